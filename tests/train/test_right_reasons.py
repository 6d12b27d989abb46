"""configs/right_reasons.py in small: on decoy shapes the plain model takes the shortcut, and
the Grad-CAM penalty moves Grad-CAM onto the object.

What it does not claim: that a penalized model stops using the decoy. At full size the
input-gradient penalty does and the Grad-CAM one does not (configs/right_reasons.py's
docstring has the measurements); in this test's 225 steps neither does yet. These checks pin
what holds in small, and fail if the decoy stops fooling plain training or the penalty stops
moving the explanation.
"""
import pytest

from cnnviz_jax.report import mask_figures, samples, trained_run
from cnnviz_jax.train import loop, validate
from configs import right_reasons


def _config(variant, data_dir):
  config = right_reasons.get_config(variant)
  config.data.data_dir = data_dir
  config.data.shapes.update(num_train=1200, num_validation=96, num_test=192, num_classes=3)
  config.model.options.filters = (8, 16, 16, 16)
  config.stages[0].epochs = 6
  if variant == "grad_cam":
    config.explanation_loss.weight = 0.3  # 6 short epochs: a lighter hand still learns
  config.eval_splits = ("validation", "test")
  return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  out = {}
  for variant in ("plain", "grad_cam"):
    workdir = tmp_path_factory.mktemp(variant)
    results = loop.train_and_evaluate(_config(variant, data_dir), workdir)
    run = trained_run.load_run(workdir)
    test = samples.examples(run.data_config, "test", 192)
    _, inside, _ = mask_figures.measure(run.model, run.variables, test.images,
                                        test.object_masks, "block4_conv1")
    out[variant] = ({s: r["accuracy"] for s, r in results["splits"].items()}, inside.mean())
  return out


@pytest.mark.slow
def test_plain_training_falls_for_the_decoy(trained):
  accuracy, inside = trained["plain"]
  assert accuracy["validation"] > 0.9, accuracy  # the patch agrees with the class here...
  assert accuracy["test"] < 0.6, accuracy  # ...and not in test: towards chance (1/3)
  assert inside < 0.1, inside  # Grad-CAM on the patch, not on the object (chance ~0.15)


@pytest.mark.slow  # its fixture trains
def test_the_grad_cam_penalty_puts_grad_cam_on_the_object(trained):
  _, plain = trained["plain"]
  accuracy, penalized = trained["grad_cam"]
  assert accuracy["validation"] > 0.6, accuracy  # it learnt (chance: 1/3), measured 0.77
  assert penalized > plain + 0.2, (plain, penalized)


def test_every_variant_validates_and_the_first_is_the_default():
  for variant in right_reasons.VARIANTS:
    validate.validate(right_reasons.get_config(variant))
  assert right_reasons.get_config().to_dict() == right_reasons.get_config("plain").to_dict()
  assert right_reasons.get_config("decoy_free").data.shapes.decoy == 0

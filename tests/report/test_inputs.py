"""Bad input names the culprit (workdirs, images, methods, layers, targets); explaining
images with converted ImageNet-style weights."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import cnnviz_jax as cj
import helpers
import report_runs
from cnnviz_jax.report import images, trained_run
from cnnviz_jax.train.workdir import WorkdirError


def test_workdir_without_checkpoint_is_refused_naming_it(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"model": {"name": "small_cnn_bn"}}))
  with pytest.raises(WorkdirError, match=f"{tmp_path} has no checkpoint"):
    trained_run.load_run(tmp_path)
  with pytest.raises(WorkdirError, match="config.json is missing"):
    trained_run.load_run(tmp_path / "..")
  with pytest.raises(WorkdirError, match="does not exist"):
    trained_run.load_run(tmp_path / "nowhere")


def test_unreadable_image_is_named_before_any_model_is_loaded(tmp_path):
  bad = tmp_path / "holiday.jpg"
  bad.write_bytes(b"this is not a JPEG")
  with pytest.raises(trained_run.ReportError, match=f"cannot read image {bad}: not a readable"):
    images.read_image(bad)
  with pytest.raises(trained_run.ReportError, match="no such file"):
    images.read_image(tmp_path / "missing.png")
  with pytest.raises(trained_run.ReportError, match="valid methods: grad_cam"):
    images.check_methods(["grad_cam", "gradcam"])


def test_a_16_bit_image_reads_as_training_reads_it(tmp_path):
  """16-bit pixels become round(v / 257), their top 8 bits, as an image folder's do (PIL's
  convert('RGB') alone would clip them at 255); alpha is dropped."""
  deep = np.random.default_rng(0).integers(0, 65536, (12, 10)).astype(np.uint16)
  Image.fromarray(deep).save(tmp_path / "deep.png")
  np.testing.assert_array_equal(images.read_image(tmp_path / "deep.png"),
                                np.repeat(np.round(deep / 257.0)[..., None], 3, -1))
  rgba = np.random.default_rng(1).integers(0, 256, (12, 10, 4)).astype(np.uint8)
  Image.fromarray(rgba).save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(images.read_image(tmp_path / "rgba.png"), rgba[..., :3])


@pytest.mark.slow
def test_cli_reports_bad_input_with_a_clear_message_and_exit_code(tmp_path):
  bad = tmp_path / "broken.png"
  bad.write_bytes(b"\x89PNG but truncated")
  result = helpers.python("-m", "cnnviz_jax.report", f"--workdir={tmp_path}",
                          "--images", bad, timeout=300)
  assert result.returncode == 2
  assert f"error: cannot read image {bad}" in result.stderr
  result = helpers.python("-m", "cnnviz_jax.main", "--mode=report", f"--workdir={tmp_path}",
                          timeout=300)
  assert result.returncode != 0 and "config.json is missing" in result.stderr


def test_images_with_converted_weights(tmp_path):
  model = cj.models.create("small_cnn_bn", num_classes=4)  # meta holds no options
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  rng = np.random.default_rng(0)  # positive values: valid BatchNorm variances, no init compile
  variables = jax.tree.map(lambda s: (rng.random(s.shape) * 0.2 + 0.05).astype(s.dtype), shapes)
  meta = cj.weights.WeightsMeta("small_cnn_bn", "cnnviz_jax", "torch", input_size=32,
                                class_names=("a", "b", "c", "d"))
  cj.weights.save(tmp_path / "weights", variables, meta)
  from cnnviz_jax.report.images import explainee  # pylint: disable=import-outside-toplevel
  who = explainee(None, str(tmp_path / "weights"))
  assert who.input_size == 32 and list(who.class_names) == ["a", "b", "c", "d"]
  paths = report_runs.image_files(tmp_path)
  report = images.explain_images(who, paths, ["grad_cam", "guided_grad_cam"], tmp_path / "o",
                                 layer="block2", target=3)
  assert report.exists() and "class 3" in report.read_text()
  with Image.open(tmp_path / "o/tall_guided_grad_cam.png") as picture:
    assert picture.size == (40, 90)
  with pytest.raises(trained_run.ReportError, match="valid layers: block1_conv1"):
    images.explain_images(who, paths, ["grad_cam"], tmp_path / "o", layer="conv9")
  with pytest.raises(trained_run.ReportError, match="out of range"):
    images.explain_images(who, paths, ["grad_cam"], tmp_path / "o", target=7)

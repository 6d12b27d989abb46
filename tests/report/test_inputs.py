"""Bad input names the culprit; a partial workdir still gets a report, marked partial;
the images command writes overlays at each image's own size."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import cnnviz_jax as cj
import report_runs
from cnnviz_jax.report import build, images, workdir as workdir_lib


def test_workdir_without_checkpoint_is_refused_naming_it(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"model": {"name": "small_cnn_bn"}}))
  with pytest.raises(workdir_lib.ReportError, match=f"{tmp_path} has no checkpoint"):
    workdir_lib.load_run(tmp_path)
  with pytest.raises(workdir_lib.ReportError, match="config.json is missing"):
    workdir_lib.load_run(tmp_path / "..")
  with pytest.raises(workdir_lib.ReportError, match="does not exist"):
    workdir_lib.load_run(tmp_path / "nowhere")


def test_unreadable_image_is_named_before_any_model_is_loaded(tmp_path):
  bad = tmp_path / "holiday.jpg"
  bad.write_bytes(b"this is not a JPEG")
  with pytest.raises(workdir_lib.ReportError, match=f"cannot read image {bad}: not a readable"):
    images.read_image(bad)
  with pytest.raises(workdir_lib.ReportError, match="no such file"):
    images.read_image(tmp_path / "missing.png")
  with pytest.raises(workdir_lib.ReportError, match="valid methods: grad_cam"):
    images.check_methods(["grad_cam", "gradcam"])


def test_cli_reports_bad_input_with_a_clear_message_and_exit_code(tmp_path):
  bad = tmp_path / "broken.png"
  bad.write_bytes(b"\x89PNG but truncated")
  result = report_runs.run_module("cnnviz_jax.report", f"--workdir={tmp_path}",
                                  "--images", bad, timeout=300)
  assert result.returncode == 2
  assert f"error: cannot read image {bad}" in result.stderr
  result = report_runs.run_module("cnnviz_jax.main", "--mode=report", f"--workdir={tmp_path}",
                                  timeout=300)
  assert result.returncode != 0 and "config.json is missing" in result.stderr


def test_partial_workdir_yields_a_report_marked_partial(demo_run, tmp_path):
  finished, _ = demo_run
  partial = tmp_path / "killed"
  shutil.copytree(finished, partial, ignore=shutil.ignore_patterns("report.html", "figures"))
  # as if killed after the first epoch: no results yet, one epoch of history
  (partial / "results.json").unlink()
  history = json.loads((partial / "history.json").read_text())
  (partial / "history.json").write_text(json.dumps(history[:1]))
  path = build.workdir_report(partial, num_images=4, quick=True)
  page = path.read_text()
  assert 'data-status="partial"' in page and 'id="partial-banner"' in page
  assert "1 of 2 epochs" in page
  assert "Training did not finish" in page  # the results section says why it is empty
  names = {f["name"] for f in json.loads((partial / "figures/index.json").read_text())}
  assert {"training_curves", "grad_cam_top_classes", "class_distribution"} <= names
  assert "confusion_test" not in names
  assert "pointing_game" not in names and "Faithfulness checks skipped (quick)" in page


def _image_files(tmp_path):
  rng = np.random.default_rng(0)
  paths = []
  for name, (h, w) in (("wide.png", (48, 80)), ("tall.jpg", (90, 40))):
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / name)
    paths.append(tmp_path / name)
  return paths


def test_images_command_with_a_workdir_writes_overlays_at_image_size(demo_run, tmp_path):
  workdir, _ = demo_run
  paths = _image_files(tmp_path)
  out = tmp_path / "out"
  result = report_runs.run_module(
      "cnnviz_jax.report", f"--workdir={workdir}", "--images", *paths,
      "--methods=grad_cam,guided_backprop,integrated_gradients", f"--output={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"report: {out}/report.html" in result.stdout
  for path in paths:
    size = Image.open(path).size
    for method in ("grad_cam", "guided_backprop", "integrated_gradients"):
      with Image.open(out / f"{path.stem}_{method}.png") as overlay:
        assert overlay.size == size
  page = (out / "report.html").read_text()
  assert page.count("<figure") == 2 and "wide.png" in page and "tall.jpg" in page
  if report_runs.chromium() is not None:  # this page, too, must render cleanly
    found = report_runs.browser_check(out / "report.html", tmp_path, tmp_path / "images.png")
    assert found["errors"] == [] and found["sections"] == ["results", "looks"]
    assert all(i["complete"] and i["width"] > 0 for i in found["images"])


def test_images_with_converted_weights(tmp_path):
  model = cj.models.create("small_cnn_bn", num_classes=4)  # meta holds no options
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  meta = cj.weights.WeightsMeta("small_cnn_bn", "cnnviz_jax", "torch", input_size=32,
                                class_names=("a", "b", "c", "d"))
  cj.weights.save(tmp_path / "weights", variables, meta)
  from cnnviz_jax.report.__main__ import explainee  # pylint: disable=import-outside-toplevel
  who = explainee(None, str(tmp_path / "weights"))
  assert who.input_size == 32 and list(who.class_names) == ["a", "b", "c", "d"]
  paths = _image_files(tmp_path)
  report = images.explain_images(who, paths, ["grad_cam", "guided_grad_cam"], tmp_path / "o",
                                 layer="block2", target=3)
  assert report.exists() and "class 3" in report.read_text()
  with Image.open(tmp_path / "o/tall_guided_grad_cam.png") as picture:
    assert picture.size == (40, 90)
  with pytest.raises(workdir_lib.ReportError, match="valid layers: block1_conv1"):
    images.explain_images(who, paths, ["grad_cam"], tmp_path / "o", layer="conv9")
  with pytest.raises(workdir_lib.ReportError, match="out of range"):
    images.explain_images(who, paths, ["grad_cam"], tmp_path / "o", target=7)


def test_unknown_report_layers_are_named_with_the_valid_ones(demo_run):
  workdir, _ = demo_run
  run = workdir_lib.load_run(workdir)
  from cnnviz_jax.report import compute  # pylint: disable=import-outside-toplevel
  with pytest.raises(workdir_lib.ReportError, match=r"\['block9'\]; valid layers: block1_conv1"):
    compute.choose_layers(run.model, run.variables, (32, 32, 3), None, ["block1", "block9"])
  assert compute.choose_layers(run.model, run.variables, (32, 32, 3)) == (
      "block4_conv1", ("block1_conv1", "block2", "block4_conv1"))

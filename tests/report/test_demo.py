"""The README demo end to end (tiny settings): train -> evaluate -> report, checked for
content and in a real browser; then a partial copy of it and its use on image files.
Every test that needs the demo run lives here: xdist (--dist loadfile) trains it once."""
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import helpers
import report_runs
from cnnviz_jax.report import build, compute, trained_run

SECTIONS = ["data", "training", "results", "looks", "masks", "faithful"]  # shapes: masks
CORE_FIGURES = {"class_distribution", "samples", "augmented_samples", "training_curves",
                "confusion_test", "per_class_accuracy", "grad_cam_top_classes",
                "grad_cam_all_classes", "grad_cam_all_classes_gif", "guided_grad_cam",
                "guided_backprop_deconvnet", "guided_backprop_per_class",
                "guided_backprop_neuron", "feature_maps", "filters", "receptive_fields",
                "max_activating_patches", "activation_maximization", "deletion_insertion",
                "pointing_game", "randomization_check", "randomization_maps",
                "in_mask_grad_cam"}


def _index(workdir):
  return {f["name"]: f for f in json.loads((workdir / "figures/index.json").read_text())}


@pytest.mark.slow  # its fixture trains the demo and builds its report
def test_demo_command_trains_and_prints_where_the_report_is(demo_run):
  workdir, result = demo_run
  assert f"report: {workdir}/report.html" in result.stdout
  page = (workdir / "report.html").read_text()
  assert 'data-status="complete"' in page and "partial-banner" not in page
  assert CORE_FIGURES <= set(_index(workdir))
  for figure in _index(workdir).values():
    assert (workdir / "figures" / figure["file"]).stat().st_size > 1000


@pytest.mark.slow
def test_demo_console_shows_the_header_epochs_and_results_without_library_noise(demo_run):
  workdir, result = demo_run
  output = result.stdout + result.stderr
  lines = output.splitlines()
  assert len(lines) <= 30, output
  header = [line for line in lines if re.search(
      rf"training small_cnn_bn on \d+ cpu device\(s\) in {re.escape(str(workdir))}; "
      r"data: shapes/train: 256 examples, 3 classes", line)]
  assert len(header) == 1, output
  epochs = [int(m.group(1)) for m in re.finditer(r"stage 0 epoch (\d+): train loss", output)]
  assert epochs == [0, 1], output  # report_runs.TINY: 2 epochs, each once
  assert f"results: {workdir}/results.json" in result.stdout
  assert output.count(f"report: {workdir}/report.html") == 1
  for noise in ("reader.py", "dataset_info.py", "logging_logger.py", "logging_writer.py",
                "Unable to initialize backend", "distributed service", "FeatureConnector",
                "partially cached", "Given directory is read only"):
    assert noise not in output, noise


@pytest.mark.slow
def test_report_is_self_contained_with_sections_in_reading_order_and_versions(demo_run):
  workdir, _ = demo_run
  page = (workdir / "report.html").read_text()
  positions = [page.index(f'<section id="{key}"') for key in SECTIONS]
  assert positions == sorted(positions)
  sources = [s.split('"')[0] for s in page.split('<img src="')[1:]]
  assert sources and all(s.startswith(("data:image/png;base64,", "data:image/gif;base64,"))
                         for s in sources)
  assert "http://" not in page and "https://" not in page and "<script" not in page
  for library in ("jax ", "flax ", "optax "):
    assert library in page.split("<footer>")[1]
  assert '<details id="config">' in page and "small_cnn_bn" in page
  faithful = page.split('<section id="faithful">')[1].split("</section>")[0]
  for column in ("deletion AUC", "insertion AUC", "pointing game", "all layers random"):
    assert column in faithful


@pytest.mark.slow
def test_confusion_matrix_figure_shows_the_numbers_of_results_json(demo_run):
  workdir, _ = demo_run
  results = json.loads((workdir / "results.json").read_text())
  counts = np.asarray(results["splits"]["test"]["confusion_matrix"])
  texts = _index(workdir)["confusion_test"]["texts"]
  n = counts.size
  assert [int(t) for t in texts[:n]] == counts.ravel().tolist()
  normalized = counts / counts.sum(1, keepdims=True)
  np.testing.assert_allclose([float(t) for t in texts[n:2 * n]], normalized.ravel(), atol=0.005)


@pytest.mark.slow
def test_gif_has_one_frame_per_class(demo_run):
  workdir, _ = demo_run
  classes = json.loads((workdir / "results.json").read_text())["class_names"]
  with Image.open(workdir / "figures/grad_cam_all_classes.gif") as gif:
    assert gif.is_animated and gif.n_frames == len(classes) == 3
    frames = []
    for i in range(gif.n_frames):
      gif.seek(i)
      frames.append(np.asarray(gif.convert("RGB"), np.float32))
  assert all(np.abs(frames[0] - f).mean() > 0.5 for f in frames[1:])  # the frames differ


@pytest.mark.slow
def test_report_opens_in_headless_chromium_without_errors(demo_run, tmp_path):
  if report_runs.chromium() is None:
    pytest.skip("no Chromium found (Debian: apt-get install -y chromium); .ci/run installs it")
  workdir, _ = demo_run
  screenshot = tmp_path / "report.png"
  found = report_runs.browser_check(workdir / "report.html", tmp_path, screenshot)
  assert found["errors"] == []
  assert found["sections"] == SECTIONS
  assert found["status"] == "complete"
  assert len(found["images"]) == len(_index(workdir))
  undecoded = [i["alt"] for i in found["images"]
               if not i["complete"] or i["width"] <= 0 or i["height"] <= 0]
  assert not undecoded, undecoded
  with Image.open(screenshot) as shot:
    assert shot.size == (1280, 2400)
    assert np.asarray(shot.convert("L")).std() > 10  # a page was drawn, not a blank
  print(f"screenshot: {screenshot}")


def test_browser_probe_catches_a_broken_image_and_a_script_error(tmp_path):
  if report_runs.chromium() is None:
    pytest.skip("no Chromium found (Debian: apt-get install -y chromium)")
  page = tmp_path / "broken.html"
  page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body '
                  'data-status="complete"><section id="data"><img alt="bad" '
                  'src="data:image/png;base64,bm90IGEgcG5n"></section>'
                  "<script>console.error('boom'); undefinedFunction();</script></body></html>")
  found = report_runs.browser_check(page, tmp_path, tmp_path / "broken.png")
  assert found["images"][0]["width"] == 0
  assert any("failed to load IMG" in e for e in found["errors"])
  assert any("boom" in e for e in found["errors"])
  assert any("undefinedFunction" in e for e in found["errors"])


@pytest.mark.slow
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


@pytest.mark.slow
def test_images_command_with_a_workdir_writes_overlays_at_image_size(demo_run, tmp_path):
  workdir, _ = demo_run
  paths = report_runs.image_files(tmp_path)
  out = tmp_path / "out"
  result = helpers.python(
      "-m", "cnnviz_jax.report", f"--workdir={workdir}", "--images", *paths,
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


@pytest.mark.slow
def test_unknown_report_layers_are_named_with_the_valid_ones(demo_run):
  workdir, _ = demo_run
  run = trained_run.load_run(workdir)
  with pytest.raises(trained_run.ReportError, match=r"\['block9'\]; valid layers: block1_conv1"):
    compute.choose_layers(run.model, run.variables, (32, 32, 3), None, ["block1", "block9"])
  assert compute.choose_layers(run.model, run.variables, (32, 32, 3)) == (
      "block4_conv1", ("block1_conv1", "block2", "block4_conv1"))


@pytest.mark.slow
def test_mode_report_rewrites_the_report_of_an_existing_workdir(demo_run):
  workdir, _ = demo_run
  before = (workdir / "report.html").stat().st_mtime_ns
  result = helpers.python("-m", "cnnviz_jax.main", "--mode=report", f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"report: {workdir}/report.html" in result.stdout
  assert (workdir / "report.html").stat().st_mtime_ns > before
  assert "accuracy:" not in result.stdout  # nothing was trained


@pytest.mark.slow
def test_report_command_on_a_workdir_prints_its_path_and_draws_the_report_methods(demo_run,
                                                                                  tmp_path):
  """As --mode=report does; --report_methods adds the chosen explain-images methods (here a
  layer attribution and a SHAP method) to the looks section, in one figure."""
  workdir, _ = demo_run
  out = tmp_path / "elsewhere.html"
  result = helpers.python("-m", "cnnviz_jax.report", f"--workdir={workdir}", "--quick",
                          "--num_images=4", f"--output={out}",
                          "--report_methods=layer_conductance,gradient_shap")
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == f"report: {out}"
  page = out.read_text()
  assert 'data-status="complete"' in page and 'id="fig-more_methods"' in page
  more = _index(workdir)["more_methods"]
  assert more["section"] == "looks"
  assert {"layer conductance", "gradient shap"} <= set(more["texts"]), more["texts"]
  with pytest.raises(trained_run.ReportError, match="valid methods: .*layer_conductance"):
    build.workdir_report(workdir, methods=["layer_conductanc"])  # before any work

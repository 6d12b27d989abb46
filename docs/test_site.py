"""The built documentation: its pages open in headless Chromium with their figures drawn, and
the API reference holds every export of `cj.explain`.

Run after the build (.ci/run does both; the README's test command does not collect docs/):
    .venv/bin/sphinx-build -W -b html docs docs/_build/html
    .venv/bin/python -m pytest docs/test_site.py -q -n 0
"""
import pathlib
import shutil
import sys
import types

import numpy as np
import pytest
from PIL import Image

DOCS = pathlib.Path(__file__).resolve().parent
SITE = DOCS / "_build" / "html"
sys.path[:0] = [str(DOCS.parent / "tests"), str(DOCS.parent / "tests" / "report")]
import report_runs  # noqa: E402  pylint: disable=wrong-import-position  (the report's browser probe)

TUTORIAL = "tutorials/01_explain_a_photograph.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  """A copy of the built site: the probe writes its page and the browser profile beside the
  page it opens (so the page's relative links resolve), never into docs/_build."""
  if not (SITE / "index.html").exists():
    pytest.fail(f"no built site at {SITE}: run sphinx-build -W -b html docs docs/_build/html")
  copy = tmp_path_factory.mktemp("site") / "html"
  shutil.copytree(SITE, copy, ignore=shutil.ignore_patterns("_sources", ".doctrees"))
  return copy


def _open(site: pathlib.Path, page: str, tmp_path) -> dict:
  if report_runs.chromium() is None:
    pytest.skip("no Chromium found (Debian: apt-get install -y chromium); .ci/run installs it")
  path = site / page
  screenshot = tmp_path / (path.stem + ".png")
  found = report_runs.browser_check(path, path.parent, screenshot)
  with Image.open(screenshot) as shot:
    assert np.asarray(shot.convert("L")).std() > 10  # a page was drawn, not a blank
  return found


def _drawn(images: list[dict]) -> list[dict]:
  return [i for i in images if i["complete"] and i["width"] > 0 and i["height"] > 0]


def test_index_opens_without_errors(site, tmp_path):
  found = _open(site, "index.html", tmp_path)
  assert found["errors"] == []
  assert _drawn(found["images"]) == found["images"]


def test_a_tutorial_shows_the_figures_it_drew(site, tmp_path):
  page = (site / TUTORIAL).read_text(encoding="utf-8")
  figures = page.count('<img alt="../_images/')  # myst-nb's executed outputs, as files
  assert figures >= 5, f"{TUTORIAL} holds {figures} figures"
  found = _open(site, TUTORIAL, tmp_path)
  assert found["errors"] == []
  assert len(found["images"]) >= figures
  undecoded = [i["alt"] for i in found["images"] if i not in _drawn(found["images"])]
  assert not undecoded, undecoded
  assert sum(i["width"] >= 300 for i in found["images"]) >= figures  # figures, not icons


def test_every_explain_export_is_in_the_api_reference():
  import cnnviz_jax.explain as explain  # pylint: disable=import-outside-toplevel
  names = sorted(name for name, obj in vars(explain).items()
                 if not name.startswith("_") and not isinstance(obj, types.ModuleType))
  assert len(names) > 50
  missing = []
  for name in names:
    page = SITE / "api" / "generated" / f"cnnviz_jax.explain.{name}.html"
    if not page.exists() or f'id="cnnviz_jax.explain.{name}"' not in page.read_text("utf-8"):
      missing.append(name)
  assert not missing, f"exports of cnnviz_jax.explain without a reference page: {missing}"

"""Fixtures of the Keras converter tests: reference models built once, large files removed."""
import pytest


@pytest.fixture(scope="module")
def reference(request, tmp_path_factory):
  """arch -> the module's `Reference(arch, directory, seed)`, built once per module (the seed
  is the arch's index in the module's `_KERAS` table)."""
  module = request.module
  make, archs, cache = module.Reference, list(module._KERAS), {}  # pylint: disable=protected-access

  def build(arch):
    if arch not in cache:
      cache[arch] = make(arch, tmp_path_factory.mktemp(arch), seed=archs.index(arch))
    return cache[arch]

  yield build
  for ref in cache.values():  # 0.1-0.5 GB per file: do not leave them in pytest's basetemp
    for path in ref.files.values():
      path.unlink(missing_ok=True)


@pytest.fixture
def scratch(tmp_path):
  """tmp_path whose (100 MB-sized) weight files are removed after the test."""
  yield tmp_path
  for path in tmp_path.iterdir():
    if path.is_file():
      path.unlink()

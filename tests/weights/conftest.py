"""Fixtures of the converter tests: reference models built once, their weight files written
when asked for, one at a time; the convert command line."""
import collections.abc
import functools
import subprocess

import pytest

import helpers


@pytest.fixture
def convert_cli():
  """`python -m cnnviz_jax.weights.convert` on the CPU -> the completed process."""
  def run(source: str, arch: str, input_path, output_path) -> subprocess.CompletedProcess:
    return helpers.python("-m", "cnnviz_jax.weights.convert", f"--source={source}",
                          f"--arch={arch}", f"--input={input_path}", f"--output={output_path}")
  return run


class _OneFileOnDisk:
  """The one reference weight file of a module on disk: writing another deletes it. A module's
  files together are up to 3.3 GB (VGG-19's two: 1.2 GB) on a shared disk, and a CI run failed
  here when /tmp could take no more; rewriting a file when it is needed again costs ~1 s."""

  def __init__(self):
    self.path = None

  def hold(self, path, write):
    if path != self.path:
      self.release()
      write(path)
      self.path = path
    return path

  def release(self):
    if self.path is not None:
      self.path.unlink(missing_ok=True)
      self.path = None


class _WeightFiles(collections.abc.Mapping):
  """layout ('legacy' .h5 as keras.applications downloads it, or 'keras3' .weights.h5) -> the
  path of the model's file in that layout, written on access: use it before the next access."""

  def __init__(self, model, directory, stem, save_legacy_h5, disk):
    self._layouts = {"legacy": (directory / f"{stem}.h5", functools.partial(save_legacy_h5, model)),
                     "keras3": (directory / f"{stem}.weights.h5", model.save_weights)}
    self._disk = disk

  def __getitem__(self, layout):
    return self._disk.hold(*self._layouts[layout])

  def __iter__(self):
    return iter(self._layouts)

  def __len__(self):
    return len(self._layouts)


@pytest.fixture(scope="module")
def reference(request, tmp_path_factory):
  """arch -> the module's `Reference(arch, seed)`, built once per module (the seed is the arch's
  index in the module's `_KERAS` table), its `files` attached here."""
  module = request.module
  archs, cache, disk = list(module._KERAS), {}, _OneFileOnDisk()  # pylint: disable=protected-access
  directory = tmp_path_factory.mktemp("keras_files")

  def build(arch):
    if arch not in cache:
      ref = module.Reference(arch, seed=archs.index(arch))
      ref.files = _WeightFiles(ref.model, directory, arch, module.save_legacy_h5, disk)
      cache[arch] = ref
    return cache[arch]

  yield build
  disk.release()


@pytest.fixture
def scratch(tmp_path):
  """tmp_path whose (100 MB-sized) weight files are removed after the test."""
  yield tmp_path
  for path in tmp_path.iterdir():
    if path.is_file():
      path.unlink()

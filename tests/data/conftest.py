"""Shared data for the data tests: one small shapes dataset, generated once per session."""
# torchvision before TensorFlow, in every process that may hold both: triton's LLVM (loaded
# by torchvision through torch._dynamo) segfaults when TensorFlow's was loaded first.
try:
  import torchvision.transforms.v2.functional  # noqa: F401  pylint: disable=unused-import
except ImportError:
  pass

import pytest  # pylint: disable=wrong-import-position

from pipeline_worker import SHAPES  # noqa: E402  pylint: disable=wrong-import-position,import-error


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.data import shapes  # pylint: disable=import-outside-toplevel
  tfds.disable_progress_bar()
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  shapes.prepare(data_dir, **SHAPES)
  return data_dir


@pytest.fixture(scope="session")
def shapes_array_record_dir(tmp_path_factory):
  """The same shapes, prepared in array_record (read by index: the pipeline can stream)."""
  from cnnviz_jax.data import shapes  # pylint: disable=import-outside-toplevel
  data_dir = str(tmp_path_factory.mktemp("tfds_array_record"))
  shapes.prepare(data_dir, file_format="array_record", **SHAPES)
  return data_dir


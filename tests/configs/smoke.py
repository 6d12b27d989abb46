"""Smoke runs of the seed configs: the config as written, shrunk for a CPU, trained for real.

`shrink` is the one place that makes a config small, and it only touches sizes and lengths
(image size, batch, images per class, epochs); `meaning` is everything else, which a test
asserts unchanged. `run` trains on tfds' mock data or a generated image folder.
"""
import contextlib
import copy
import importlib
import json
import math
import pathlib
import threading
from unittest import mock

import flax
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.testing import test_utils as tfds_test_utils

import cnnviz_jax as cj
from cnnviz_jax.data import tfds_sources
from cnnviz_jax.train import freeze, loop, validate

# The seeds' class counts (their write-ups), and what the image folder of seed 000 gets.
SEED_CLASSES = {"seed_000_inaturalist": 10, "seed_001_cats_vs_dogs": 2,
                "seed_002_flowers102": 102, "seed_003_tf_flowers": 5, "seed_004_caltech101": 5}
# Smallest inputs each architecture accepts (Keras: Inception >= 75 px, Xception >= 71 px;
# small_cnn's four valid conv + pool pairs need 46 px); others 32 px. Seed 002's randomly
# initialized ResNet50, fine-tuned whole on batches of 2 at 32 px (1×1 maps in layer4), gives
# NaN eval losses: BatchNorm statistics of 2 values. 64 px (2×2) keeps them finite.
TINY_IMAGE = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 75, "small_cnn": 48,
              "resnet50": 64}
SIZE_FIELDS = ("image_size", "resize_size", "batch_size", "eval_batch_size", "max_per_class",
               "prefetch")
# Mock examples per tfds split: enough for every split of every class subset to be non-empty
# (caltech101 keeps 5 of 102 classes; the one-split datasets are cut 60-80 / 10-20 / 10-20).
MOCK_EXAMPLES = {"cats_vs_dogs": 12, "tf_flowers": 30, "oxford_flowers102": 6, "caltech101": 600}
LIGHT_MODELS = ("small_cnn", "small_cnn_bn", "selu_cnn")  # the rest compile for a minute on a CPU
FOLDER_IMAGES_PER_CLASS, FOLDER_MAX_PER_CLASS = 10, 8  # 8: 6/1/1 per class at 75/12.5/12.5 %


def config_module(name: str):
  return importlib.import_module(f"configs.{name}")


def cases(*names: str, light: bool | None = None) -> list[tuple[str, str]]:
  """(config module, variant) for every variant the modules declare; light=True / False:
  only those with a small scratch CNN / a big backbone."""
  out = [(n, v) for n in names for v in config_module(n).VARIANTS]
  if light is None:
    return out
  return [(n, v) for n, v in out
          if (config_module(n).get_config(v).model.name in LIGHT_MODELS) == light]


def shrink(config, batch_size: int = 2):
  """A copy small enough for a CPU: tiny images and batches, one epoch per stage."""
  small = copy.deepcopy(config)
  data = small.data
  size = TINY_IMAGE.get(small.model.name, 32)
  if data.resize_size:  # keep the eval resize-then-crop, at the same ratio
    data.resize_size = math.ceil(size * data.resize_size / data.image_size)
  data.image_size = size
  data.batch_size = batch_size
  data.eval_batch_size = None
  data.prefetch = 1
  if data.max_per_class:
    data.max_per_class = FOLDER_MAX_PER_CLASS
  for stage in small.stages:
    stage.epochs = 1
  return small


def meaning(config) -> dict:
  """Every field but the sizes and lengths `shrink` may change."""
  out = config.to_dict()
  for field in SIZE_FIELDS:
    out["data"].pop(field)
  out["stages"] = [{k: v for k, v in s.to_dict().items() if k != "epochs"}
                   for s in config.stages]  # to_dict leaves a list's ConfigDicts as they are
  return out


def image_folder(root: pathlib.Path, classes: int,
                 per_class: int = FOLDER_IMAGES_PER_CLASS) -> pathlib.Path:
  """root/class_<k>/<i>.jpg: random JPEGs of a few sizes."""
  rng = np.random.default_rng(0)
  for k in range(classes):
    (root / f"class_{k}").mkdir(parents=True)
    for i in range(per_class):
      pixels = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
      Image.fromarray(pixels).save(root / f"class_{k}" / f"{i}.jpg")
  return root


class _ThreadMockFs(tfds_test_utils.MockFs):
  """tfds' mock file system, for the thread that entered it alone.

  tfds.testing.mock_data swaps epath's file functions process-wide while `as_dataset` runs;
  orbax's background thread, listing a checkpoint directory at that moment, was sent into
  the mock's empty temporary directory and failed the run (seen once).
  """

  @contextlib.contextmanager
  def mock(self):
    self._owner = threading.get_ident()
    with super().mock() as m:
      yield m

  def _mine(self):
    return threading.get_ident() == getattr(self, "_owner", None)

  def _mock_open(self, original_fn, p, mode="r", **kwargs):
    if not self._mine():
      return original_fn(p, mode, **kwargs)
    return super()._mock_open(original_fn, p, mode, **kwargs)

  def _mock_fn(self, original_fn, p, **kwargs):
    return super()._mock_fn(original_fn, p, **kwargs) if self._mine() else original_fn(p, **kwargs)

  def _mock_fn_2_args(self, original_fn, p, p2, **kwargs):
    if not self._mine():
      return original_fn(p, p2, **kwargs)
    return super()._mock_fn_2_args(original_fn, p, p2, **kwargs)

  def _mock_glob(self, original_fn, p):
    return super()._mock_glob(original_fn, p) if self._mine() else original_fn(p)

  def _mock_walk(self, original_fn, p):
    return super()._mock_walk(original_fn, p) if self._mine() else original_fn(p)


@contextlib.contextmanager
def mock_tfds(num_examples: int):
  tfds_sources.clear_caches()  # listings made under another mock (or none) must not leak
  with mock.patch.object(tfds_test_utils, "MockFs", _ThreadMockFs), \
      tfds.testing.mock_data(num_examples=num_examples):
    yield
  tfds_sources.clear_caches()


def run(config, workdir: pathlib.Path) -> dict:
  """Validates the config as written, then trains its shrunk copy; returns results.json."""
  validate.validate(config)
  small = shrink(config)
  assert meaning(small) == meaning(config)
  validate.validate(small)
  loop.train_and_evaluate(small, workdir)
  return json.loads((workdir / "results.json").read_text())


def random_backbone(config, directory: pathlib.Path, num_classes: int) -> str:
  """A converted-weights directory for the config's backbone (no head, as `weights.convert`
  writes it) holding random values at the shrunk input size: the seeds' documented
  `--config.weights` run. Drawn with numpy from the shapes, so the backbone's random init is
  never compiled (InceptionResNetV2's takes 22 s on 2 cores)."""
  small = shrink(config)
  _, shapes, _ = model_shapes(small, num_classes)
  shapes = flax.core.unfreeze(shapes)
  shapes["params"].pop("head")
  rng = np.random.default_rng(0)

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":  # the variance of flax's default (LeCun normal) init, which the models use
      return (rng.standard_normal(leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))).astype(
          leaf.dtype)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(leaf.dtype)
    return rng.uniform(-0.1, 0.1, leaf.shape).astype(leaf.dtype)  # bias, mean

  meta = cj.weights.WeightsMeta(config.model.name, "cnnviz_jax", config.data.normalization,
                                small.data.image_size, small.data.resize_size)
  cj.weights.save(directory, jax.tree_util.tree_map_with_path(draw, shapes), meta)
  return str(directory)


def run_case(name: str, variant: str, tmp_path: pathlib.Path):
  """Trains one variant on mock tfds data or a generated image folder, checks the workdir;
  -> (config as written, results.json). A big backbone starts from converted weights (random
  values: `random_backbone`), as the seeds do; the small CNNs train from scratch."""
  config = config_module(name).get_config(variant)
  num_classes = SEED_CLASSES[name]
  if config.model.name not in LIGHT_MODELS:
    config.weights = random_backbone(config, tmp_path / "weights", num_classes)
  if config.data.name == "folder":
    config.data.root = str(image_folder(tmp_path / "folder", classes=num_classes))
    results = run(config, tmp_path / "run")
  else:
    with mock_tfds(MOCK_EXAMPLES[config.data.name]):
      results = run(config, tmp_path / "run")
  check_results(results, tmp_path / "run", config, num_classes)
  return config, results


def check_results(results: dict, workdir: pathlib.Path, config, num_classes: int) -> None:
  """One epoch per stage, finite losses, every split evaluated with `num_classes` classes."""
  assert results["model"] == config.model.name
  assert len(results["class_names"]) == num_classes
  history = json.loads((workdir / "history.json").read_text())
  assert [h["stage"] for h in history] == list(range(len(config.stages)))
  assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in history)
  for split in config.eval_splits:
    result = results["splits"][split]
    assert result["num_examples"] > 0 and np.isfinite(result["loss"])
    assert 0.0 <= result["accuracy"] <= 1.0
    assert np.asarray(result["confusion_matrix"]).shape == (num_classes, num_classes)


# --- What trains: the config's freezing rules on the model's real parameter tree -----------
def model_shapes(config, num_classes: int):
  """(the config's model, its variables' shapes, an example input) at config's image size."""
  model = cj.models.create(config.model.name, num_classes=num_classes,
                           head=config.model.head or None, **config.model.options)
  size = config.data.image_size
  example = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  return model, jax.eval_shape(model.init, jax.random.key(0), example), example


def frozen_fractions(config, num_classes: int) -> list[tuple[float, bool]]:
  """Per stage: (fraction of the backbone's layers frozen, whether the head trains).
  Shapes only (jax.eval_shape): nothing is compiled."""
  model, variables, example = model_shapes(config, num_classes)
  order = cj.models.module_order(model, variables, example)
  out = []
  for stage in config.stages:
    mask = flax.traverse_util.flatten_dict(freeze.trainable_mask(
        variables["params"], stage.freeze, stage.freeze_fraction, module_order=order))
    backbone = {k[:-1] for k in mask if k[0] != "head"}
    frozen = {k[:-1] for k, trains in mask.items() if k[0] != "head" and not trains}
    head_trains = all(trains for k, trains in mask.items() if k[0] == "head")
    out.append((len(frozen) / len(backbone), head_trains))
  return out

"""The data config: every field the input pipeline reads, with its default.

Experiment configs set `config.data = data.default_config()` and override fields; the
pipeline also takes a plain dict or keyword overrides. `with_meta` copies image size,
eval resizing (unless `size_from_weights` is False) and normalization from converted
weights, so a model is fed as trained.
"""
import copy
from collections.abc import Mapping

import ml_collections

from cnnviz_jax.errors import ConfigError, check_fields, check_one_of
from cnnviz_jax.data import shapes_render, datasets
from cnnviz_jax.weights import preprocessing

FILE_FORMATS = (None, "tfrecord", "array_record")  # tfds' storage of a prepared dataset

# The seeds' augmentations, ready to assign to config.augment.
KERAS_SEED_001 = dict(kind="keras", rotation=40.0, width_shift=0.2, height_shift=0.2,
                      shear=0.2, zoom=0.2, horizontal_flip=True, fill_mode="nearest")
# RandomRotation's degrees: 30, our choice where a recipe names none
TORCHVISION_SEED_002 = dict(kind="torchvision", scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                            horizontal_flip=True, vertical_flip=True, rotation=30.0,
                            fill_mode="constant")


# The synthetic shapes' generation parameters (data/shapes.py), defaults: the demo's.
# decoy: side (px) of a class-colored corner patch, a confounder (shapes_decoy.py); 0: none
SHAPES = dict(num_classes=5, image_size=32, num_train=6000, num_validation=1000, num_test=1000,
              distractor_prob=0.5, object_size=shapes_render.OBJECT_SIZE, seed=0, decoy=0)
# The decoy digits (data/decoy_digits.py): decoy = side (px) of the label-coded corner
# swatch (0: the decoy-free twin); seed = the split, the corners, the test grey levels.
DIGITS = dict(decoy=4, seed=0)
_SUB_CONFIGS = ("shapes", "digits")  # nested dicts: an override updates their fields


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "shapes"  # see datasets.NAMES
  c.data_dir = None  # tfds data_dir (shapes is generated here); None: tfds' default
  c.download = True  # let tfds download a missing dataset (never under the tfds mock)
  c.file_format = None  # tfds datasets: None (tfds' tfrecord) or 'array_record' (read by
  # index: can stream above cache_budget_mb; prepare it in a data_dir of its own)
  c.root = None  # name='folder': root/<class>/<images>
  c.classes = None  # class subset by name (caltech101 defaults to a five-class subset)
  c.max_per_class = None  # image folders: keep at most this many per class
  c.split_fractions = (0.8, 0.1, 0.1)  # train/val/test, where the dataset has no such split
  c.split_seed = 0  # the split does not move when the training seed does
  c.shapes = ml_collections.ConfigDict(SHAPES)
  c.digits = ml_collections.ConfigDict(DIGITS)  # name='decoy_digits'
  c.batch_size = 32  # global, over every device of every process
  c.eval_batch_size = None  # None: batch_size
  c.image_size = 32  # model input side
  c.resize_size = None  # eval: shorter side -> this, center crop (torchvision); None: direct
  c.resize_method = "bilinear"
  # with converted weights: image_size and resize_size from their meta; False keeps this
  # config's (a fully convolutional net also runs at other sizes: smaller is cheaper)
  c.size_from_weights = True
  c.normalization = "unit"  # preprocessing.NORMALIZATIONS; from weights meta: torch/caffe/…
  c.mean = None  # 'standardize': per-channel mean / std on the [0, 1] scale
  c.std = None
  c.augment = ml_collections.ConfigDict(dict(kind=None))  # or KERAS_SEED_001, …
  c.seed = 0  # order of training examples and augmentation randomness
  c.prefetch = 4  # batches tf.data prepares ahead
  # each process caches its share of the encoded images in RAM up to this many MB; above
  # it, an image folder streams (reads each image when its step comes); 0: always stream
  c.cache_budget_mb = 4096
  return c


def with_meta(config, meta) -> dict:
  """`config` with image size, eval resizing and normalization of a `WeightsMeta`."""
  out = resolve(config)
  if out["size_from_weights"]:
    out.update(image_size=meta.input_size, resize_size=meta.resize_size)
  out["normalization"] = meta.normalization
  return out


def _to_dict(config) -> dict:
  if config is None:
    return {}
  if isinstance(config, ml_collections.ConfigDict):
    return config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"data config must be a ConfigDict or a mapping; got {type(config)}")
  return {k: _to_dict(v) if isinstance(v, (Mapping, ml_collections.ConfigDict)) else v
          for k, v in config.items()}


def resolve(config=None, **overrides) -> dict:
  """Defaults <- config <- overrides, as a plain dict; unknown keys and values are errors."""
  out = default_config().to_dict()
  for layer in (_to_dict(config), _to_dict(overrides)):
    check_fields(layer, out, "config.data.")
    for key, value in layer.items():
      if key in _SUB_CONFIGS and isinstance(value, Mapping):
        out[key] = {**out[key], **value}
      else:
        out[key] = copy.deepcopy(value)
  check_one_of(out["name"], datasets.NAMES, "dataset")
  check_one_of(out["normalization"], preprocessing.NORMALIZATIONS, "normalization")
  kind = (out["augment"] or {}).get("kind")
  if kind is not None:
    from cnnviz_jax.data import augment  # pylint: disable=import-outside-toplevel  (TensorFlow)
    check_one_of(kind, augment.KINDS, "augmentation kind", note="or None")
  check_one_of(out["file_format"], FILE_FORMATS, "file_format")
  if not isinstance(out["cache_budget_mb"], int) or out["cache_budget_mb"] < 0:
    raise ConfigError(f"data config cache_budget_mb must be an int >= 0; got "
                      f"{out['cache_budget_mb']!r}")
  for key in ("batch_size", "image_size"):
    if not isinstance(out[key], int) or out[key] <= 0:
      raise ConfigError(f"data config {key} must be a positive int; got {out[key]!r}")
  return out

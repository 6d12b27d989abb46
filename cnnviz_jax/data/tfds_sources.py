"""The seeds' tensorflow-datasets sources, with stratified splits where tfds has none.

Split sizes and labels come from one scan of the labels (images not decoded), never from
`builder.info.splits`: under `tfds.testing.mock_data` that is empty. Positions are the read
order of the whole tfds split; we do not use tfds slicing to pick a process's shard
because the mock ignores it, so a process streams the split's records and keeps (and later
decodes) only its own positions.
"""
import dataclasses
import functools
from collections.abc import Sequence

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from cnnviz_jax.data import shapes, splits
from cnnviz_jax.data.source import MASK_KEYS, Source
from cnnviz_jax.errors import ConfigError, check_one_of

# caltech101's default five-class subset
CALTECH101_SEED_CLASSES = ("brain", "butterfly", "ewer", "helicopter", "ketch")


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
  # our split -> (tfds split, part): part indexes the stratified parts of that tfds split
  # (None: the whole tfds split). Parts are cut with config.split_fractions renormalized.
  splits: dict[str, tuple[str, int | None]]
  default_classes: tuple[str, ...] | None = None


_ALL_FROM_TRAIN = {"train": ("train", 0), "validation": ("train", 1), "test": ("train", 2)}
SPECS = {
    "cats_vs_dogs": TfdsSpec(_ALL_FROM_TRAIN),  # 23,262 images, one tfds split
    "tf_flowers": TfdsSpec(_ALL_FROM_TRAIN),  # 3,670 images, one tfds split
    "oxford_flowers102": TfdsSpec(  # the official 1,020 / 1,020 / 6,149
        {"train": ("train", None), "validation": ("validation", None), "test": ("test", None)}),
    "caltech101": TfdsSpec(  # official train / test; validation carved from train
        {"train": ("train", 0), "validation": ("train", 1), "test": ("test", None)},
        default_classes=CALTECH101_SEED_CLASSES),
}


_plain = tf.autograph.experimental.do_not_convert  # plain tensor code: AutoGraph is only cost


def _read_config() -> tfds.ReadConfig:
  # One file at a time: a fixed order. No auto-cache: each read is one pass and the pipeline
  # keeps what it needs; a partial read (a take, for a few positions) threw the cache away.
  return tfds.ReadConfig(interleave_cycle_length=1, try_autocache=False)


def _feature_keys(builder) -> tuple[str, ...]:
  return tuple(k for k in ("image",) + MASK_KEYS if k in builder.info.features)


@functools.lru_cache(maxsize=32)
def _scan_labels(builder, tfds_split: str) -> np.ndarray:
  """Every label of a tfds split in read order, without decoding the images."""
  if _random_access(builder):  # tfds reads array_record only by index
    source, chunk = _data_source(builder, tfds_split), 4096
    return np.asarray([e["label"] for i in range(0, len(source), chunk)
                       for e in source.__getitems__(list(range(i, min(i + chunk, len(source)))))],
                      np.int32)
  ds = builder.as_dataset(split=tfds_split, read_config=_read_config(), shuffle_files=False,
                          decoders=tfds.decode.PartialDecoding({"label": True}))
  chunks = [b.numpy() for b in ds.map(_plain(lambda ex: ex["label"])).batch(8192)]
  return np.concatenate(chunks).astype(np.int32) if chunks else np.zeros(0, np.int32)


def _read_positions(builder, tfds_split: str, tfds_positions: np.ndarray) -> dict:
  """Encoded images (and masks) of the given sorted positions of a tfds split."""
  keys = _feature_keys(builder)
  if not len(tfds_positions):
    return {k: np.zeros(0, object) for k in keys}
  keep = np.zeros(int(tfds_positions[-1]) + 1, bool)
  keep[tfds_positions] = True
  keep_t = tf.constant(keep)
  ds = builder.as_dataset(split=tfds_split, read_config=_read_config(), shuffle_files=False,
                          decoders={k: tfds.decode.SkipDecoding() for k in keys})
  ds = ds.take(len(keep)).enumerate().filter(_plain(lambda i, ex: keep_t[i]))
  ds = ds.map(_plain(lambda i, ex: {k: ex[k] for k in keys})).batch(1024)
  out = {k: [] for k in keys}
  for batch in ds.as_numpy_iterator():
    for k in keys:
      out[k].append(batch[k].astype(object))
  got = {k: np.concatenate(v) for k, v in out.items()}
  if len(got["image"]) != len(tfds_positions):
    raise RuntimeError(f"{builder.name}/{tfds_split}: expected {len(tfds_positions)} "
                       f"examples up to position {len(keep) - 1}, read {len(got['image'])}; "
                       "did the prepared data change since the labels were scanned?")
  return got


def builder_source(builder, split: str, tfds_split: str, part: int | None,
                   fractions: Sequence[float], classes: Sequence[str] | None,
                   seed: int) -> Source:
  """A Source over any prepared tfds builder with 'image' and 'label' features."""
  all_names = tuple(builder.info.features["label"].names)
  labels = _scan_labels(builder, tfds_split)
  if classes:
    unknown = [c for c in classes if c not in all_names]
    if unknown:
      raise ConfigError(f"{builder.name} has no classes {unknown}; valid: {', '.join(all_names)}")
    remap = np.full(len(all_names), -1, np.int32)
    remap[[all_names.index(c) for c in classes]] = np.arange(len(classes))
    positions = np.flatnonzero(remap[labels] >= 0)
    labels, names = remap[labels[positions]], tuple(classes)
  else:
    positions, names = np.arange(len(labels)), all_names
  if part is not None:
    chosen = stratified_part(labels, fractions, split, seed)
    positions, labels = positions[chosen], labels[chosen]
  if not len(positions):
    raise ConfigError(f"{builder.name} split {split!r} (from tfds split {tfds_split!r}) "
                      f"is empty; classes={classes}, fractions={tuple(fractions)}")

  random_access = _random_access(builder)

  def load(pos: np.ndarray) -> dict[str, np.ndarray]:
    if random_access:
      return _read_directly(builder, tfds_split, positions[np.asarray(pos)])
    return _read_positions(builder, tfds_split, positions[np.asarray(pos)])

  total = sum(s.num_examples for s in builder.info.splits.values())
  mean_bytes = float(builder.info.dataset_size) / total if total else 0.0  # as prepared
  return Source(name=builder.name, split=split, class_names=names, labels=labels, load=load,
                has_object_mask="object_mask" in builder.info.features,
                has_ignore_mask="ignore_mask" in builder.info.features,
                random_access=random_access, mean_encoded_bytes=mean_bytes,
                image_shape=_fixed_image_shape(builder.info.features))


def _fixed_image_shape(features) -> tuple[int, int] | None:
  """(height, width) shared by the image and its object mask, where the features fix it."""
  shapes = {tuple(features[k].shape[:2]) for k in ("image",) + MASK_KEYS if k in features}
  shape = shapes.pop() if len(shapes) == 1 else (None,)
  return shape if None not in shape else None


def _random_access(builder) -> bool:
  """Prepared in a format read by index (array_record), not only in order (tfrecord)."""
  formats = tfds.core.file_adapters.FileFormat.with_random_access()
  return bool(set(builder.info.available_file_formats()) & set(formats))


@functools.lru_cache(maxsize=32)
def _data_source(builder, tfds_split: str):
  keys = _feature_keys(builder)
  return builder.as_data_source(split=tfds_split,
                                decoders={k: tfds.decode.SkipDecoding() for k in keys})


def _read_directly(builder, tfds_split: str, tfds_positions: np.ndarray) -> dict:
  """Encoded images (and masks) of the given positions, read by index (tfds.data_source:
  the same order as the sequential read of the split's files)."""
  examples = _data_source(builder, tfds_split).__getitems__([int(i) for i in tfds_positions])
  return {k: np.asarray([e[k] for e in examples] + [b""], object)[:-1]
          for k in _feature_keys(builder)}


def stratified_part(labels: np.ndarray, fractions: Sequence[float], split: str,
                    seed: int) -> np.ndarray:
  """Positions of `split`'s part when all three splits are cut from one labeled list."""
  return splits.stratified_split(labels, fractions, seed)[splits.split_index(split)]


def tfds_source(name: str, split: str, data_dir: str | None = None,
                fractions: Sequence[float] = (0.8, 0.1, 0.1),
                classes: Sequence[str] | None = None, seed: int = 0,
                download: bool = True, file_format: str | None = None) -> Source:
  """`split` ('train' | 'validation' | 'test') of one of the seeds' tfds datasets."""
  check_one_of(name, SPECS, "tfds source")
  spec = SPECS[name]
  splits.split_index(split)  # validates the name
  tfds_split, part = spec.splits[split]
  sharing = [s for s, (t, p) in spec.splits.items() if t == tfds_split and p is not None]
  if part is not None:
    # renormalize the config fractions over the splits cut from this tfds split
    frac = np.array([fractions[splits.split_index(s)] for s in sharing], np.float64)
    if frac.sum() <= 0:
      raise ConfigError(f"split_fractions {tuple(fractions)} leave nothing for {sharing}")
    full = np.zeros(3)
    full[[splits.split_index(s) for s in sharing]] = frac / frac.sum()
    fractions = tuple(full)
  builder = _builder(name, data_dir, download, file_format)
  return builder_source(builder, split, tfds_split, part, fractions,
                        classes if classes is not None else spec.default_classes, seed)


def _prepare_once(prepare):
  """Runs `prepare` on process 0 first, so hosts sharing a data_dir never race to write it;
  then everywhere (a no-op where the data is already there)."""
  if jax.process_count() > 1:
    if jax.process_index() == 0:
      prepare()
    multihost_utils.sync_global_devices("cnnviz_jax.data: dataset prepared")
  return prepare()


@functools.lru_cache(maxsize=16)
def _builder(name: str, data_dir: str | None, download: bool, file_format: str | None = None):
  builder = tfds.builder(name, data_dir=data_dir, file_format=file_format)
  if download:  # a no-op when prepared (and under the tfds mock)
    _prepare_once(builder.download_and_prepare)
  return builder


def shapes_source(split: str, data_dir: str | None = None, file_format: str | None = None,
                  **shapes_config) -> Source:
  """The synthetic shapes dataset (generated into data_dir on first use)."""
  hashable = {k: tuple(v) if isinstance(v, list) else v for k, v in shapes_config.items()}
  builder = _shapes_builder(data_dir, file_format, tuple(sorted(hashable.items())))
  return builder_source(builder, split, split, None, (1.0, 0.0, 0.0), None, 0)


@functools.lru_cache(maxsize=16)
def _shapes_builder(data_dir, file_format, config_items):
  return _prepare_once(lambda: shapes.prepare(data_dir, file_format, **dict(config_items)))


def decoy_digits_source(split: str, data_dir: str | None = None, file_format: str | None = None,
                        **digits_config) -> Source:
  """scikit-learn's digits with Ross et al.'s decoy (data/decoy_digits.py), generated into
  data_dir on first use."""
  builder = _digits_builder(data_dir, file_format, tuple(sorted(digits_config.items())))
  return builder_source(builder, split, split, None, (1.0, 0.0, 0.0), None, 0)


@functools.lru_cache(maxsize=16)
def _digits_builder(data_dir, file_format, config_items):
  from cnnviz_jax.data import decoy_digits  # pylint: disable=import-outside-toplevel
  return _prepare_once(lambda: decoy_digits.prepare(data_dir, file_format, **dict(config_items)))


def clear_caches() -> None:
  """Forgets cached builders and label scans (e.g. between tfds.testing.mock_data blocks)."""
  for cached in (_builder, _scan_labels, _shapes_builder, _digits_builder, _data_source):
    cached.cache_clear()

"""The data a report shows: a few chosen examples, a whole split's predictions, augmentations.

Reads a split's `Source` directly (not the sharded training pipeline): the report runs on
one process, on host arrays, and wants specific examples (one per class first), while
decoding, resizing and normalizing exactly as the pipeline's eval path does.
"""
import dataclasses
import functools
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

# importing data.model_input hides the GPU from TensorFlow (tf.data only, as in training)
from cnnviz_jax.data import config as data_config, model_input, datasets
from cnnviz_jax.data.source import Source
from cnnviz_jax.weights import preprocessing

@dataclasses.dataclass
class Examples:
  images: np.ndarray  # (N, H, W, 3) float32, model input
  labels: np.ndarray  # (N,) int
  positions: np.ndarray  # (N,) positions in the split
  object_masks: np.ndarray | None = None  # (N, H, W) where the dataset has them


def spread_positions(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
  """n positions: the first example of each class in turn (round robin), in split order."""
  by_class = [list(np.flatnonzero(labels == c)) for c in range(num_classes)]
  chosen = []
  while len(chosen) < min(n, len(labels)):
    for members in by_class:
      if members and len(chosen) < n:
        chosen.append(members.pop(0))
  return np.asarray(chosen, np.int64)


def _batches(cfg: dict, source: Source, positions: np.ndarray,
             batch_size: int) -> Iterator[dict]:
  positions = np.asarray(positions, np.int64)
  order = np.argsort(positions, kind="stable")  # sources load sorted positions
  loaded = source.load(positions[order])
  inverse = np.empty_like(order)
  inverse[order] = np.arange(len(order))
  with_mask = source.has_object_mask and "object_mask" in loaded
  columns = (loaded["image"][inverse],) + ((loaded["object_mask"][inverse],) if with_mask else ())
  ds = tf.data.Dataset.from_tensor_slices(columns).map(
      lambda *c: model_input.model_input(cfg, *c), num_parallel_calls=tf.data.AUTOTUNE)
  yield from ds.batch(batch_size).prefetch(2).as_numpy_iterator()


def examples(cfg: dict, split: str, n: int) -> Examples:
  """n examples of `split`, one per class in turn, preprocessed for the model."""
  source = datasets.get_source(cfg, split)
  positions = spread_positions(source.labels, n, source.num_classes)
  batch = next(_batches(cfg, source, positions, max(len(positions), 1)))
  return Examples(batch["image"], source.labels[positions].astype(np.int64), positions,
                  batch.get("object_mask"))


def predict_split(cfg: dict, split: str, predict: Callable[[np.ndarray], np.ndarray],
                  max_examples: int = 2000, batch_size: int = 250
                  ) -> tuple[Examples, np.ndarray]:
  """(examples, probabilities (N, C)) over up to `max_examples` evenly spaced examples."""
  source = datasets.get_source(cfg, split)
  count = min(max_examples, source.num_examples)
  positions = np.unique(np.linspace(0, source.num_examples - 1, count).astype(np.int64))
  images, probabilities = [], []
  for batch in _batches(cfg, source, positions, batch_size):
    images.append(batch["image"])
    probabilities.append(np.asarray(predict(batch["image"])))
  return (Examples(np.concatenate(images), source.labels[positions].astype(np.int64), positions),
          np.concatenate(probabilities))


def augmented(cfg: dict, n: int = 4, k: int = 5, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, str]:
  """(originals (n, S, S, 3), augmented (n, k, S, S, 3), description), both in [0, 1].

  Uses the config's augmentation; where it has none, the seed-001 Keras settings, so
  the reader sees what augmentation would do (the description says which).
  """
  aug = dict(cfg.get("augment") or {})
  if aug.get("kind"):
    description = f"the configured {aug['kind']} augmentation"
  else:
    aug = dict(data_config.KERAS_SEED_001)
    description = ("Keras ImageDataGenerator augmentation (illustration only: this run trained "
                   "without augmentation)")
  source = datasets.get_source(cfg, "train")
  positions = spread_positions(source.labels, n, source.num_classes)
  loaded = source.load(np.sort(positions))["image"]
  unit = {**cfg, "augment": aug, "normalization": "unit"}  # pictures in [0, 1]
  originals, out = [], []
  for i, encoded in enumerate(loaded):
    image = model_input.pixels(tf.constant(encoded), 3)  # decoded once for the k + 1 views
    originals.append(model_input.model_input(unit, image)["image"].numpy())
    row = []
    for j in range(k):
      key = tf.constant([seed, i * k + j], tf.int64)
      row.append(model_input.model_input(unit, image, augment_key=key)["image"].numpy())
    out.append(np.stack(row))
  return (np.clip(np.stack(originals), 0, 1), np.clip(np.stack(out), 0, 1), description)


def normalizer(cfg: dict) -> Callable:
  """RGB in [0, 1] (jax or numpy) -> model input, as the pipeline normalizes (for inputs
  made by optimization). One function per setting, so jit caches keyed on it hit."""
  mean, std = cfg.get("mean"), cfg.get("std")
  return _normalizer(cfg["normalization"], tuple(mean) if mean else None,
                     tuple(std) if std else None)


@functools.lru_cache(maxsize=None)
def _normalizer(mode: str, mean, std) -> Callable:
  return lambda rgb: preprocessing.normalize(rgb * 255.0, mode, mean, std)

"""What the loop needs from the data: batches by global step, class names, shapes.

Thin glue over cnnviz_jax.data.pipeline (train/eval iterators of global sharded arrays),
plus the cached backbone features of feature extraction.
"""
import logging
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from cnnviz_jax.data import layout, pipeline
from cnnviz_jax.models import taps
from cnnviz_jax.train import explanation_loss, from_config

_MODEL_KEYS = ("image", "label", "valid")


def to_host(x) -> np.ndarray:
  """A global array gathered to every process as numpy (all shards, in order)."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def replicated_to_host(tree):
  """Replicated arrays (metrics: every process holds them whole) as numpy, on every host."""
  return jax.tree.map(np.asarray, jax.device_get(tree))


class Input:
  """Train and eval batches for the loop; the data position is the global step."""

  def __init__(self, config: ml_collections.ConfigDict, mesh):
    self.config = from_config.data_config(config)
    self.sharding = layout.batch_sharding(mesh)
    self._train = pipeline.train_iterator(self.config, sharding=self.sharding)
    self.eval_splits = tuple(config.eval_splits)
    self._eval = {}
    self.steps_per_epoch = self._train.steps_per_epoch
    self.class_names = self._train.class_names
    self.num_classes = self._train.num_classes
    self.image_shape = self._train.image_shape
    self._features = None
    self._train_keys = _MODEL_KEYS
    spec = config.get("explanation_loss")
    if explanation_loss.enabled(spec):  # the penalty needs its region's masks
      explanation_loss.check_masks(self._train.source, spec)
      self._train_keys = _MODEL_KEYS + (explanation_loss.mask_key(spec),)

  def describe(self) -> str:
    return self._train.describe()

  def train_batches(self, start_step: int, num_steps: int) -> Iterator[dict]:
    if self._features is not None:
      yield from self._feature_batches(start_step, num_steps)
      return
    if self._train.step != start_step:
      self._train.set_state({"step": start_step})
    for _ in range(num_steps):
      batch = next(self._train)
      yield {k: batch[k] for k in self._train_keys}

  def eval_batches(self, split: str) -> Iterator[dict]:
    if self._features is not None:
      yield from self._features_eval(split)
      return
    if split not in self._eval:
      self._eval[split] = pipeline.eval_iterator(self.config, split=split, sharding=self.sharding)
    for batch in self._eval[split]:
      yield {k: batch[k] for k in _MODEL_KEYS}

  # --- Feature extraction: the frozen backbone runs once per example ----------
  def cached_features(self, model, variables) -> "Input":
    """Switches this input to the head inputs of every example (no augmentation)."""
    extract = jax.jit(lambda v, x: taps.head_inputs(model, v, x))
    self._features = {}
    for split in ("train",) + tuple(s for s in self.eval_splits if s != "train"):
      iterator = pipeline.eval_iterator(self.config, split=split, sharding=self.sharding)
      feats, labels = [], []
      for batch in iterator:
        keep = to_host(batch["valid"]) > 0
        feats.append(to_host(extract(variables, batch["image"]))[keep])
        labels.append(to_host(batch["label"])[keep])
      self._features[split] = (np.concatenate(feats), np.concatenate(labels).astype(np.int32))
      logging.info("cached %s features of %s: %s", split, self.describe(),
                   self._features[split][0].shape)
    return self

  def _feature_batches(self, start_step: int, num_steps: int) -> Iterator[dict]:
    """The pipeline's own order of examples (train_order), so a feature-extraction run
    sees the batches a run on the full model with a frozen backbone would."""
    features, labels = self._features["train"]
    order = {}
    for step in range(start_step, start_step + num_steps):
      epoch, offset = divmod(step, self.steps_per_epoch)
      if epoch not in order:
        order = {epoch: layout.train_order(self._train.streams, self._train.rows, epoch,
                                             self.config["seed"])[0]}
      positions = order[epoch][offset]  # this process's rows
      yield layout.global_arrays(
          self.sharding, {"image": features[positions], "label": labels[positions],
                          "valid": np.ones(len(positions), np.float32)}, self._train.global_batch)

  def _features_eval(self, split: str) -> Iterator[dict]:
    features, labels = self._features[split]
    size = self._train.global_batch
    for positions in layout.eval_order(len(labels), size, self._train.rows):
      real = positions >= 0  # -1: padding of the last batch, masked out
      take = np.where(real, positions, 0)
      yield layout.global_arrays(self.sharding, {"image": features[take], "label": labels[take],
                                                   "valid": real.astype(np.float32)}, size)

"""tf.data on the CPU -> global jax.Arrays sharded over the batch axis of every device.

    it = pipeline.train_iterator(config, start_step=restored_step)  # infinite, resumable
    batch = next(it)        # {'image', 'label', 'mask', 'index'[, 'object_mask']}
    for batch in pipeline.eval_iterator(config, split="validation"): ...

Layout (a pure function of the data, the global batch size G and the seed; independent of
how many processes or devices read it, so a 2-process run yields the very batches of a
1-process run):
- train: the N examples are dealt, in a seeded random order, into G row streams (row r
  gets every G-th one). Epoch e, step s, row r is the s-th example of a fresh
  (seed, e, r) permutation of row r's stream; steps per epoch = N // G (the < G examples
  left over rotate per epoch). A process holds only the streams of the batch rows its
  devices hold, and each example gets a stateless augmentation key from (seed, e, s, r).
- eval: batch s is positions [s*G, (s+1)*G) in split order; the last batch is padded
  (with a repeat of a real example, 'mask' 0, 'index' -1), so every example is counted
  exactly once over all hosts.
Resume: the iterator state is the global step; the pipeline rebuilds at any step without
replaying data (only the index stream is skipped), so a restart is exact.
Memory: each process caches its share of the split in RAM as encoded bytes (JPEG/PNG as
stored), decoded again each epoch: decoded images of mixed sizes would not stack, and at
224 px they would take ~10x the memory. Small images (shapes, 32 px) decode in microseconds.
Above `cache_budget_mb` a source that reads any example directly (image folders, tfds in
array_record) streams instead: each example is read from disk or bucket when its step comes
(_Reader); the batches, the resume and the eval pass are the same as when cached.
"""
import atexit
import logging
import weakref
from collections.abc import Iterator

import jax
import numpy as np
import tensorflow as tf
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cnnviz_jax.data import augment, sources, transforms
from cnnviz_jax.data import config as config_lib
from cnnviz_jax.data.source import Source
from cnnviz_jax.errors import ConfigError
from cnnviz_jax.train import mesh as mesh_lib
from cnnviz_jax.weights import preprocessing

try:  # tf.data only: TF must never take an accelerator from JAX
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # already initialized by the caller; tensorflow-cpu has none anyway
  pass

_FOREVER = 1 << 62
# tf.data iterators still running Python reads (numpy_function) when the interpreter
# finalizes hang the process at exit: they are closed before that, at atexit.
_OPEN = weakref.WeakSet()


@atexit.register
def _close_open_iterators() -> None:
  for it in list(_OPEN):
    it.close()


def batch_sharding(mesh: Mesh | None = None) -> NamedSharding:
  """Batch axis split over every axis of `mesh` (default: train.mesh's, all devices)."""
  if mesh is None:
    mesh = mesh_lib.make_mesh()
  names = tuple(mesh.axis_names)
  return NamedSharding(mesh, PartitionSpec(names if len(names) > 1 else names[0]))


def process_rows(sharding: NamedSharding, global_batch: int) -> np.ndarray:
  """Sorted batch rows held by this process's devices (its slice of every global batch)."""
  spec = sharding.spec[0] if len(sharding.spec) else None
  axes = () if spec is None else (spec if isinstance(spec, tuple) else (spec,))
  shards = int(np.prod([sharding.mesh.shape[a] for a in axes]))
  if global_batch % shards:
    lo, hi = global_batch // shards * shards, -(-global_batch // shards) * shards
    raise ConfigError(f"global batch size {global_batch} is not divisible by the {shards} "
                      f"devices that split the batch axis (mesh {dict(sharding.mesh.shape)}); "
                      f"use a multiple of {shards}, e.g. {max(lo, shards)} or {hi}")
  rows = set()
  for index in sharding.addressable_devices_indices_map((global_batch,)).values():
    rows.update(range(*index[0].indices(global_batch)))
  return np.asarray(sorted(rows), np.int64)


def global_arrays(sharding: NamedSharding, local: dict, global_batch: int) -> dict:
  """This process's rows (process_rows) of every array -> global arrays of global_batch."""
  return {k: jax.make_array_from_process_local_data(sharding, v, (global_batch,) + v.shape[1:])
          for k, v in local.items()}


def train_streams(num_examples: int, global_batch: int, seed: int) -> list[np.ndarray]:
  """Row r's stream of positions (sizes N // G or N // G + 1)."""
  if num_examples < global_batch:
    raise ConfigError(f"the training split has {num_examples} examples, fewer than one global "
                      f"batch of {global_batch}")
  dealt = np.random.default_rng([seed, 0]).permutation(num_examples)
  return [dealt[r::global_batch] for r in range(global_batch)]


def train_order(streams: list[np.ndarray], rows: np.ndarray, epoch: int, seed: int):
  """Positions (steps, len(rows)) and augmentation keys (steps, len(rows), 2) of an epoch."""
  steps = min(len(s) for s in streams)
  positions = np.stack([
      streams[r][np.random.default_rng([seed, 1, epoch, r]).permutation(len(streams[r]))[:steps]]
      for r in rows], axis=1)
  keys = np.random.default_rng([seed, 2, epoch]).integers(0, 2**31 - 1, (steps, len(streams), 2))
  return positions, keys[:, rows]


def eval_order(num_examples: int, global_batch: int, rows: np.ndarray) -> np.ndarray:
  """Positions (steps, len(rows)); -1 marks padding in the last batch."""
  steps = -(-num_examples // global_batch)
  pos = np.arange(steps)[:, None] * global_batch + rows[None, :]
  return np.where(pos < num_examples, pos, -1)


class _Reader:
  """One process's examples of a split, and the per-example TF transform.

  Cached (the default): the process's share of the encoded images in RAM, read once; where
  the source fixes the image size and the pixels fit `cache_budget_mb`, decoded once instead.
  Streaming: when that share would exceed `cache_budget_mb` and the source reads any
  example directly (image folders, tfds array_record), each example's bytes are read when
  its step comes: plain files by tf.io.read_file, the rest by the source's Python `load`.
  Both address examples by position, so they yield the very same batches.
  """

  def __init__(self, cfg: dict, source: Source, positions: np.ndarray, train: bool):
    self.cfg, self.source, self.train = cfg, source, train
    self.positions = np.unique(positions[positions >= 0])
    if not len(self.positions):  # this process holds only padding: keep one real example
      self.positions = np.zeros(1, np.int64)
    share_mb = len(self.positions) * source.mean_encoded_bytes / 2**20
    self.streaming = bool(source.random_access and share_mb > cfg["cache_budget_mb"])
    self.decoded = False
    if self.streaming:
      self.keys = ("image", "object_mask") if source.has_object_mask else ("image",)
      self.files = None if source.files is None else tf.constant(source.files)
      logging.info("%s/%s: streaming %d examples (~%.0f MB encoded > cache_budget_mb %d)",
                   source.name, source.split, len(self.positions), share_mb,
                   cfg["cache_budget_mb"])
      return
    if share_mb > cfg["cache_budget_mb"]:
      logging.warning("%s/%s: caching ~%.0f MB, over cache_budget_mb %d: this source reads "
                      "only in order, so it cannot stream", source.name, source.split,
                      share_mb, cfg["cache_budget_mb"])
    loaded = source.load(self.positions)
    # Images of one fixed size are decoded once, not every epoch: decoding is most of what a
    # small image costs the pipeline (the demo's batch: ~6 -> ~2 ms CPU, benchmarks/demo_input)
    self.decoded = bool(source.image_shape) and (
        len(self.positions) * np.prod(source.image_shape) * (3 + source.has_object_mask)
        / 2**20 <= cfg["cache_budget_mb"])
    if self.decoded:
      loaded = {k: _decode_all(v, 3 if k == "image" else 1) for k, v in loaded.items()}
    self.store = {k: tf.Variable(tf.constant(v), trainable=False) for k, v in loaded.items()}

  def elements(self, positions: np.ndarray, keys: np.ndarray | None = None):
    """Flat numpy inputs of the TF map for a (steps, rows) block of positions."""
    flat = positions.reshape(-1)
    valid = flat >= 0
    safe = np.where(valid, flat, self.positions[0])
    keys = np.zeros((len(flat), 2), np.int64) if keys is None else keys.reshape(-1, 2)
    where = safe if self.streaming else np.searchsorted(self.positions, safe)
    return (where.astype(np.int64), self.source.labels[safe].astype(np.int32),
            np.where(valid, flat, -1).astype(np.int32), valid.astype(np.float32),
            keys.astype(np.int64))

  def _read(self, position) -> list[bytes]:
    loaded = self.source.load(np.asarray([position]))
    return [loaded[k][0] for k in self.keys]

  @tf.autograph.experimental.do_not_convert  # as model_input: no tensor branches
  def example(self, where, label, index, valid, key) -> dict:
    """where: the position (streaming) or the index into the RAM store (cached)."""
    if self.streaming and self.files is not None:
      image, mask = tf.io.read_file(tf.gather(self.files, where)), None
    elif self.streaming:
      encoded = tf.numpy_function(self._read, [where], [tf.string] * len(self.keys),
                                  stateful=False)
      encoded = [tf.ensure_shape(e, []) for e in encoded]
      image, mask = encoded[0], encoded[1] if len(encoded) > 1 else None
    else:
      image = tf.gather(self.store["image"], where)
      mask = self.store.get("object_mask")
      mask = None if mask is None else tf.gather(mask, where)
    out = model_input(self.cfg, image, mask, key if self.train else None)
    return {**out, "label": label, "mask": valid, "index": index}


def _decode_all(encoded: np.ndarray, channels: int) -> np.ndarray:
  """Encoded images of one size -> uint8 (n, h, w[, channels > 1]), decoded in parallel."""
  ds = tf.data.Dataset.from_tensor_slices(encoded).map(
      lambda e: _pixels(e, channels), num_parallel_calls=tf.data.AUTOTUNE)
  return np.concatenate(list(ds.batch(1024).as_numpy_iterator()))


def _pixels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """Encoded bytes are decoded; decoded uint8 pixels (the pipeline's RAM store) pass."""
  if image.dtype == tf.uint8:
    return image
  decoded = transforms.decode(image, channels)
  return decoded if channels > 1 else decoded[..., 0]


# Branches on the config and dtypes only, never on a tensor's value: AutoGraph has nothing to
# convert, yet converting it (augment and all) cost ~0.7 CPU-s in each process's first pipeline.
@tf.autograph.experimental.do_not_convert
def model_input(cfg: dict, image: tf.Tensor, mask: tf.Tensor | None = None,
                augment_key: tf.Tensor | None = None) -> dict:
  """One image (and object mask), encoded or as uint8 pixels -> {'image': model input[,
  'object_mask']}: the configured augmentation when given a key (training), else the eval
  resizing; then the normalization. The one per-example transform of the pipeline and the
  report."""
  size = cfg["image_size"]
  image = _pixels(image, 3)
  mask = None if mask is None else _pixels(mask, 1)
  aug = dict(cfg["augment"] or {})
  if augment_key is not None and aug.get("kind"):
    image, mask = augment.augment(image, augment_key, size, aug, mask)
  else:
    image, mask = transforms.eval_resize(image, size, cfg["resize_size"], cfg["resize_method"],
                                         mask)
  out = {"image": preprocessing.normalize(tf.cast(image, tf.float32), cfg["normalization"],
                                          cfg["mean"], cfg["std"])}
  if mask is not None:
    out["object_mask"] = tf.cast(mask, tf.float32)
  return out


def _tf_options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.map_parallelization = True
  return options


class _Base:
  def __init__(self, config, split: str, sharding: NamedSharding | None, batch_key: str,
               overrides: dict):
    self.config = config_lib.resolve(config, **overrides)
    self.global_batch = self.config[batch_key] or self.config["batch_size"]
    self.sharding = sharding if sharding is not None else batch_sharding()
    self.rows = process_rows(self.sharding, self.global_batch)
    self.local_batch = len(self.rows)
    self.source = sources.get_source(self.config, split)

  @property
  def class_names(self) -> tuple[str, ...]:
    return self.source.class_names

  @property
  def num_classes(self) -> int:
    return self.source.num_classes

  @property
  def num_examples(self) -> int:
    return self.source.num_examples

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return (self.config["image_size"], self.config["image_size"], 3)

  @property
  def streaming(self) -> bool:
    """True when this process reads each example when its step comes (no RAM cache)."""
    return self._reader.streaming

  def describe(self) -> str:
    return (f"{self.source.name}/{self.source.split}: {self.num_examples} examples, "
            f"{self.num_classes} classes, global batch {self.global_batch} "
            f"({self.local_batch} on process {jax.process_index()} of {jax.process_count()}), "
            f"{'streamed' if self.streaming else 'cached in RAM'}"
            f"{' (decoded)' if self._reader.decoded else ''}")

  def _global(self, local: dict) -> dict:
    return global_arrays(self.sharding, local, self.global_batch)


class TrainIterator(_Base):
  """Infinite iterator of global training batches; state = {'step': next step}."""

  def __init__(self, config=None, *, split: str = "train", sharding=None, start_step: int = 0,
               **overrides):
    super().__init__(config, split, sharding, "batch_size", overrides)
    seed = self.config["seed"]
    self.streams = train_streams(self.num_examples, self.global_batch, seed)
    self.steps_per_epoch = min(len(s) for s in self.streams)
    mine = np.concatenate([self.streams[r] for r in self.rows])
    self._reader = _Reader(self.config, self.source, mine, train=True)
    self.set_state({"step": start_step})
    _OPEN.add(self)

  def close(self) -> None:
    """Stops the background reads; next() then raises StopIteration."""
    self._it = iter(())

  def _epoch(self, epoch):
    positions, keys = train_order(self.streams, self.rows, int(epoch), self.config["seed"])
    return self._reader.elements(positions, keys)

  def _dataset(self, start_step: int) -> tf.data.Dataset:
    epoch0, step0 = divmod(start_step, self.steps_per_epoch)
    dtypes = (tf.int64, tf.int32, tf.int32, tf.float32, tf.int64)

    @tf.autograph.experimental.do_not_convert
    def epoch_elements(epoch):
      arrays = tf.numpy_function(self._epoch, [epoch], dtypes, stateful=False)
      for a, rank in zip(arrays, (1, 1, 1, 1, 2)):
        a.set_shape([None] * rank)
      return tf.data.Dataset.from_tensor_slices(tuple(arrays))

    ds = tf.data.Dataset.range(epoch0, _FOREVER).flat_map(epoch_elements)
    ds = ds.skip(step0 * self.local_batch)  # indices only: nothing is decoded to get here
    ds = ds.map(self._reader.example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(self.local_batch, drop_remainder=True).prefetch(self.config["prefetch"])
    return ds.with_options(_tf_options())

  @property
  def step(self) -> int:
    return self._step

  def get_state(self) -> dict:
    return {"step": self._step}

  def set_state(self, state: dict) -> None:
    step = int(state["step"])
    if step < 0:
      raise ValueError(f"step must be >= 0; got {step}")
    self._step = step
    self._it = self._dataset(step).as_numpy_iterator()

  def __iter__(self) -> Iterator[dict]:
    return self

  def __next__(self) -> dict:
    batch = self._global(next(self._it))
    self._step += 1
    return batch


class EvalIterator(_Base):
  """Iterable over one pass of a split; each `iter()` starts a fresh, identical pass."""

  def __init__(self, config=None, *, split: str = "validation", sharding=None, **overrides):
    super().__init__(config, split, sharding, "eval_batch_size", overrides)
    self._positions = eval_order(self.num_examples, self.global_batch, self.rows)
    self._reader = _Reader(self.config, self.source, self._positions, train=False)
    arrays = self._reader.elements(self._positions)
    ds = tf.data.Dataset.from_tensor_slices(arrays)
    ds = ds.map(self._reader.example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(self.local_batch, drop_remainder=True).prefetch(self.config["prefetch"])
    self._dataset = ds.with_options(_tf_options())
    self._passes = weakref.WeakSet()  # passes begun and not finished
    _OPEN.add(self)

  def __len__(self) -> int:
    return len(self._positions)

  def __iter__(self) -> Iterator[dict]:
    one_pass = self._pass()
    self._passes.add(one_pass)
    return one_pass

  def _pass(self) -> Iterator[dict]:
    for local in self._dataset.as_numpy_iterator():
      yield self._global(local)

  def close(self) -> None:
    """Ends the passes still open (their background reads stop)."""
    for one_pass in list(self._passes):
      one_pass.close()


def train_iterator(config=None, *, sharding=None, start_step: int = 0,
                   **overrides) -> TrainIterator:
  return TrainIterator(config, sharding=sharding, start_step=start_step, **overrides)


def eval_iterator(config=None, *, split: str = "validation", sharding=None,
                  **overrides) -> EvalIterator:
  return EvalIterator(config, split=split, sharding=sharding, **overrides)

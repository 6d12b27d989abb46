"""Where one process's examples of a split come from: RAM, or read when their step comes.

Cached (RamStore, the default): the process's share of the split in RAM as encoded bytes
(JPEG/PNG as stored), decoded again each epoch: decoded images of mixed sizes would not
stack, and at 224 px they would take ~10x the memory. Where the source fixes the image size
and the pixels fit `cache_budget_mb`, they are decoded once instead (decoding is most of what
a small image costs the pipeline). Above `cache_budget_mb` a source that reads any example
directly (image folders, tfds in array_record) streams: each example's bytes are read when
its step comes, plain files by tf.io.read_file (FileStream), the rest by the source's Python
`load` (SourceStream). All address examples by position, so they yield the very same batches.
"""
import logging

import numpy as np
import tensorflow as tf

from cnnviz_jax.data.model_input import decode_all, model_input
from cnnviz_jax.data.source import Source


class Reader:
  """A process's examples of a split (sorted positions) and the per-example TF map."""
  streaming = False
  decoded = False

  def __init__(self, cfg: dict, source: Source, positions: np.ndarray, train: bool):
    self.cfg, self.source, self.train, self.positions = cfg, source, train, positions

  def _where(self, positions: np.ndarray) -> np.ndarray:
    """What `example` receives for real positions: here the position itself."""
    return positions

  def _encoded(self, where) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """(the encoded image, {mask key: its encoded mask}) at `where`."""
    raise NotImplementedError

  def elements(self, positions: np.ndarray, keys: np.ndarray | None = None):
    """Flat numpy inputs of the TF map for a (steps, rows) block of positions (-1: padding)."""
    flat = positions.reshape(-1)
    valid = flat >= 0
    safe = np.where(valid, flat, self.positions[0])
    keys = np.zeros((len(flat), 2), np.int64) if keys is None else keys.reshape(-1, 2)
    return (self._where(safe).astype(np.int64), self.source.labels[safe].astype(np.int32),
            np.where(valid, flat, -1).astype(np.int32), valid.astype(np.float32),
            keys.astype(np.int64))

  @tf.autograph.experimental.do_not_convert  # as model_input: no tensor branches
  def example(self, where, label, index, valid, key) -> dict:
    image, masks = self._encoded(where)
    out = model_input(self.cfg, image, augment_key=key if self.train else None, **masks)
    return {**out, "label": label, "valid": valid, "index": index}


class RamStore(Reader):
  """The share read once into RAM (encoded, or decoded where the size is fixed and fits)."""

  def __init__(self, cfg: dict, source: Source, positions: np.ndarray, train: bool):
    super().__init__(cfg, source, positions, train)
    loaded = source.load(positions)
    pixels_mb = (len(positions) * np.prod(source.image_shape or (0,))
                 * (3 + len(source.mask_keys)) / 2**20)
    self.decoded = bool(source.image_shape) and pixels_mb <= cfg["cache_budget_mb"]
    if self.decoded:
      loaded = {k: decode_all(v, 3 if k == "image" else 1) for k, v in loaded.items()}
    self.store = {k: tf.Variable(tf.constant(v), trainable=False) for k, v in loaded.items()}

  def _where(self, positions: np.ndarray) -> np.ndarray:  # the index into the store
    return np.searchsorted(self.positions, positions)

  def _encoded(self, where):
    return (tf.gather(self.store["image"], where),
            {k: tf.gather(v, where) for k, v in self.store.items() if k != "image"})


class FileStream(Reader):
  """Each example's file read when its step comes (image folders, local or cloud)."""
  streaming = True

  def __init__(self, cfg: dict, source: Source, positions: np.ndarray, train: bool):
    super().__init__(cfg, source, positions, train)
    self.files = tf.constant(source.files)

  def _encoded(self, where):
    return tf.io.read_file(tf.gather(self.files, where)), {}


class SourceStream(Reader):
  """Each example read by the source's Python `load` when its step comes (array_record)."""
  streaming = True

  def __init__(self, cfg: dict, source: Source, positions: np.ndarray, train: bool):
    super().__init__(cfg, source, positions, train)
    self.keys = ("image",) + source.mask_keys

  def _read(self, position) -> list[bytes]:
    loaded = self.source.load(np.asarray([position]))
    return [loaded[k][0] for k in self.keys]

  def _encoded(self, where):
    encoded = tf.numpy_function(self._read, [where], [tf.string] * len(self.keys),
                                stateful=False)
    encoded = [tf.ensure_shape(e, []) for e in encoded]
    return encoded[0], dict(zip(self.keys[1:], encoded[1:]))


def make_reader(cfg: dict, source: Source, positions: np.ndarray, train: bool) -> Reader:
  """The reader of the examples at `positions` (-1: padding): cached unless the share is
  over cache_budget_mb and the source can read any example directly."""
  positions = np.unique(positions[positions >= 0])
  if not len(positions):  # this process holds only padding: keep one real example
    positions = np.zeros(1, np.int64)
  share_mb = len(positions) * source.mean_encoded_bytes / 2**20
  budget = cfg["cache_budget_mb"]
  if source.random_access and share_mb > budget:
    logging.info("%s/%s: streaming %d examples (~%.0f MB encoded > cache_budget_mb %d)",
                 source.name, source.split, len(positions), share_mb, budget)
    stream = FileStream if source.files is not None else SourceStream
    return stream(cfg, source, positions, train)
  if share_mb > budget:
    logging.warning("%s/%s: caching ~%.0f MB, over cache_budget_mb %d: this source reads "
                    "only in order, so it cannot stream", source.name, source.split, share_mb,
                    budget)
  return RamStore(cfg, source, positions, train)

"""tf.data on the CPU -> global jax.Arrays sharded over the batch axis of every device.

    it = pipeline.train_iterator(config, start_step=restored_step)  # infinite, resumable
    batch = next(it)        # {'image', 'label', 'valid', 'index'[, 'object_mask']}
    for batch in pipeline.eval_iterator(config, split="validation"): ...

The batch layout (which example goes to which row of which step) is data/layout.py's;
where the examples come from (RAM or streamed) is data/readers.py's; the per-example
transform is data/model_input.py's. Resume: the iterator state is the global step; the
pipeline rebuilds at any step without replaying data (only the index stream is skipped).
"""
import atexit
import weakref
from collections.abc import Iterator

import jax
import numpy as np
import tensorflow as tf
from jax.sharding import NamedSharding

from cnnviz_jax.data import config as config_lib
from cnnviz_jax.data import datasets
from cnnviz_jax.data.layout import (batch_sharding, eval_order, global_arrays, process_rows,
                                    train_order, train_streams)
from cnnviz_jax.data.readers import make_reader

_FOREVER = 1 << 62
# tf.data iterators still running Python reads (numpy_function) when the interpreter
# finalizes hang the process at exit: they are closed before that, at atexit.
_OPEN = weakref.WeakSet()


@atexit.register
def _close_open_iterators() -> None:
  for it in list(_OPEN):
    it.close()


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
    self.source = datasets.get_source(self.config, split)

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
    self._reader = make_reader(self.config, self.source, mine, train=True)
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
    self._reader = make_reader(self.config, self.source, self._positions, train=False)
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

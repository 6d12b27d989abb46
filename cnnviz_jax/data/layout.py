"""Which examples go where: the batch sharding, each process's rows, the order of every
epoch and of an eval pass (numpy only; the pipeline reads what this says).

Layout (a pure function of the data, the global batch size G and the seed; independent of
how many processes or devices read it, so a 2-process run yields the very batches of a
1-process run):
- train: the N examples are dealt, in a seeded random order, into G row streams (row r
  gets every G-th one). Epoch e, step s, row r is the s-th example of a fresh
  (seed, e, r) permutation of row r's stream; steps per epoch = N // G (the < G examples
  left over rotate per epoch). A process holds only the streams of the batch rows its
  devices hold, and each example gets a stateless augmentation key from (seed, e, s, r).
- eval: batch s is positions [s*G, (s+1)*G) in split order; the last batch is padded
  (with a repeat of a real example, 'valid' 0, 'index' -1), so every example is counted
  exactly once over all hosts.
Resume: the iterator state is the global step; the pipeline rebuilds at any step without
replaying data (only the index stream is skipped), so a restart is exact.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cnnviz_jax.errors import ConfigError
from cnnviz_jax.train import mesh as mesh_lib


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

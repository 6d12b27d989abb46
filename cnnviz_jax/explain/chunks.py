"""Bounded-memory batching over many targets, channels, samples or steps.

Two ways, chosen by what the body computes (measured on XLA-CPU, ResNet-18):
  jax.lax.map(fn, xs, batch_size=chunk): vmapped chunks in a loop. Fine for forward
                  passes and for the small head-only backward of CAMs; memory bounded.
  unrolled_chunks: a Python loop at trace time over batched chunks. For gradients
                  through the whole network: inside lax.map those run 2-3x slower than
                  the same gradient at the top level, unrolled they run at full speed,
                  one chunk after another so that memory stays bounded too.
"""
from typing import Callable

import jax
import jax.numpy as jnp


def _leading(tree) -> int:
  return jax.tree.leaves(tree)[0].shape[0]


def unrolled_chunks(fn: Callable, xs, chunk: int | None = None):
  """fn(xs) with fn batched over rows, called on at most `chunk` rows at a time."""
  n = _leading(xs)
  if chunk is None or n <= chunk:
    return fn(xs)
  outs = []
  for i in range(0, n, chunk):
    start = i + _zero_after(outs[-1]) if outs else i
    outs.append(fn(jax.tree.map(
        lambda a, start=start, i=i: jax.lax.dynamic_slice_in_dim(a, start, min(chunk, n - i)),
        xs)))
  return jax.tree.map(lambda *parts: jnp.concatenate(parts), *outs)


def _zero_after(previous) -> jax.Array:
  """int32 0 that XLA cannot prove to be 0, computed from `previous`: slicing a chunk at
  `i + _zero_after(last chunk's output)` runs the chunks one after another. Without that
  data edge XLA schedules them side by side, and memory is as if unchunked (XLA-CPU drops
  optimization barriers before scheduling). The slice copies values: no bit changes."""
  probe = jnp.sum(jax.tree.leaves(previous)[0], dtype=jnp.float32)  # a sum also works sharded
  return (0.0 * jnp.abs(jnp.nan_to_num(probe))).astype(jnp.int32)


def _explicitly_sharded(x: jax.Array) -> bool:
  """x is sharded over an explicit mesh axis (the default of `jax.make_mesh`)."""
  sharding = getattr(jax.typeof(x), "sharding", None)
  mesh = getattr(sharding, "mesh", None)
  return bool(mesh is not None and mesh.explicit_axes
              and any(axis is not None for axis in sharding.spec))


def map_targets(fn: Callable, num: int, chunk: int | None, like: jax.Array):
  """[fn(k) for k in range(num)] stacked: one target is a plain call, several are vmapped.

  On a batch sharded over an explicit mesh axis they run in sequence (lax.map): JAX's
  convolution batching rule folds the vmapped axis in front of the batch axis, which an
  explicitly sharded batch cannot express.
  """
  if num == 1:
    return jax.tree.map(lambda a: a[None], fn(jnp.int32(0)))
  if _explicitly_sharded(like):
    return jax.lax.map(fn, jnp.arange(num))
  if chunk is None or num <= chunk:
    return jax.vmap(fn)(jnp.arange(num))
  return jax.lax.map(fn, jnp.arange(num), batch_size=chunk)

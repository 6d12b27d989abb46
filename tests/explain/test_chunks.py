"""`chunk` bounds memory: the gradient explainers' rows run one chunk after another."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain import chunks


def _temp_mib(fn, *args) -> float:
  return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20


@pytest.mark.slow
def test_integrated_gradients_chunks_bound_memory_and_keep_the_values(tiny):
  """64 rows (2 images × 32 steps) in chunks of 4 need a fraction of the unchunked scratch
  memory; on an H100, ResNet-50 at 1,024 rows asked for 55 GiB whatever the chunk."""
  model, variables, x = tiny
  ig = functools.partial(cj.explain.integrated_gradients, model, target=1, steps=32)
  whole = _temp_mib(functools.partial(ig, chunk=None), variables, x)
  chunked = _temp_mib(functools.partial(ig, chunk=4), variables, x)
  assert chunked < 0.4 * whole, (chunked, whole)
  np.testing.assert_array_equal(jax.jit(functools.partial(ig, chunk=4))(variables, x),
                                jax.jit(functools.partial(ig, chunk=None))(variables, x))


def test_the_ordering_edge_is_zero_whatever_the_previous_chunk_holds():
  for previous in (jnp.float32(jnp.nan), jnp.float32(-jnp.inf), jnp.float32(3e38),
                   jnp.int32(-7), (jnp.zeros((0,)), jnp.ones(2)), jnp.full((2, 3), -0.0)):
    assert int(jax.jit(chunks._zero_after)(previous)) == 0  # pylint: disable=protected-access


def test_uneven_chunks_slice_every_row_once():
  rows = jnp.arange(10 * 3, dtype=jnp.float32).reshape(10, 3)
  labels = jnp.arange(10)
  out = jax.jit(lambda r, l: chunks.unrolled_chunks(lambda p: (p[0] * 2, p[1] + 1), (r, l), 4)
                )(rows, labels)
  np.testing.assert_array_equal(out[0], rows * 2)
  np.testing.assert_array_equal(out[1], labels + 1)

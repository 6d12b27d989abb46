"""The strided-slice max-pools (VGG and the small CNNs' 2x2, ResNet's stem, the Inception
family's 3x3 stride 2) against flax's reduce-window max-pool and torch's MaxPool2d: equal
values, equal gradients bit for bit (ties included: one input per window gets it; overlapping
windows summed in the same order), odd sizes floored."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.models.layers import tiled_max_pool, window_max_pool


@pytest.mark.parametrize("shape,window", [((2, 8, 8, 3), 2), ((1, 9, 7, 4), 2),
                                          ((2, 9, 9, 2), 3)])
def test_values_and_gradients_equal_the_reduce_window_pool(shape, window):
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape).astype(np.float32)
  x[:, :4, :4] = np.round(x[:, :4, :4])  # ties inside windows
  x[0, 0:2, 0:2, 0] = 1.0  # a window of four equal values
  reference = lambda x: nn.max_pool(x, (window, window), (window, window))
  np.testing.assert_array_equal(tiled_max_pool(jnp.asarray(x), window), reference(x))
  g = rng.normal(size=reference(x).shape).astype(np.float32)
  got = jax.vjp(lambda x: tiled_max_pool(x, window), jnp.asarray(x))[1](g)[0]
  want = jax.vjp(reference, jnp.asarray(x))[1](g)[0]
  np.testing.assert_array_equal(got, want)
  assert int((np.asarray(got)[0, 0:2, 0:2, 0] != 0).sum()) == 1  # the tie: one input only
  jitted = jax.jit(jax.grad(lambda x: jnp.sum(tiled_max_pool(x, window) * g)))(x)
  np.testing.assert_array_equal(jitted, want)


def test_gradient_routing_equals_torch_on_ties():
  torch = pytest.importorskip("torch")
  x = np.zeros((1, 4, 6, 2), np.float32)  # all ties: torch routes each to its window's first
  x[0, 2, 3, 1] = 5.0
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
  torch.nn.functional.max_pool2d(xt, 2).sum().backward()
  got = jax.grad(lambda x: jnp.sum(tiled_max_pool(x, 2)))(jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(got), xt.grad.numpy().transpose(0, 2, 3, 1))


def test_gradient_of_the_gradient_equals_the_reduce_window_pools():
  """Explanation losses differentiate an input gradient: the pool's backward must be
  differentiable (in its cotangent) like the reduce-window's."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(np.round(rng.normal(size=(2, 6, 6, 3)) * 2).astype(np.float32))  # ties
  g = jnp.asarray(rng.normal(size=(2, 3, 3, 3)).astype(np.float32))
  w = jnp.asarray(rng.normal(size=x.shape).astype(np.float32))
  reference = lambda x: nn.max_pool(x, (2, 2), (2, 2))

  def weighted_input_gradient(pool, x, g):
    return jnp.sum(jax.vjp(pool, x)[1](g)[0] * w)

  for argnum in (0, 1):
    got = jax.grad(weighted_input_gradient, argnums=argnum + 1)(
        lambda x: tiled_max_pool(x, 2), x, g)
    want = jax.grad(weighted_input_gradient, argnums=argnum + 1)(reference, x, g)
    np.testing.assert_array_equal(got, want)
  assert np.abs(np.asarray(want)).sum() > 0  # the cotangent's gradient is not trivially zero


@pytest.mark.parametrize("shape,window,stride,padding", [
    ((2, 15, 15, 3), 3, 2, ((1, 1), (1, 1))),  # ResNet's stem (torch: -inf padding)
    ((1, 16, 13, 2), 3, 2, ((0, 1), (0, 0))),  # Keras 'same' with stride 2: bottom only
    ((2, 9, 10, 2), 3, 1, ((0, 0), (0, 0))),  # every input in up to nine windows
    ((1, 12, 12, 2), 2, 3, ((0, 0), (0, 0)))])  # a stride beyond the window: gaps
def test_overlapping_and_padded_windows_equal_the_reduce_window_pool(shape, window, stride,
                                                                       padding):
  rng = np.random.default_rng(2)
  x = rng.normal(size=shape).astype(np.float32)
  x[:, :6, :6] = np.round(x[:, :6, :6])  # ties, shared between overlapping windows
  x[0, 0:4, 0:4, 0] = 1.0
  reference = lambda x: nn.max_pool(x, (window,) * 2, (stride,) * 2, padding=padding)
  ours = lambda x: window_max_pool(x, window, stride, padding)
  np.testing.assert_array_equal(ours(jnp.asarray(x)), reference(x))
  g = rng.normal(size=reference(x).shape).astype(np.float32)
  want = jax.vjp(reference, jnp.asarray(x))[1](g)[0]
  np.testing.assert_array_equal(jax.jit(lambda x, g: jax.vjp(ours, x)[1](g)[0])(x, g), want)
  if stride < window:  # the case is real: some input is the maximum of several windows
    windows_taken = jax.vjp(reference, jnp.asarray(x))[1](np.ones_like(g))[0]
    assert float(np.max(windows_taken)) >= 2

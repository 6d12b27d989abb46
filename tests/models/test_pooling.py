"""The tiled 2x2 max-pool (VGG, the small CNNs) against flax's reduce-window max-pool and
torch's MaxPool2d: equal values, equal gradients (ties included: one input per window gets
it), odd sizes floored."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.models.layers import tiled_max_pool


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

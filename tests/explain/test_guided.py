"""custom_vjp guided / deconv activations against their definitions; unit targets."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj

E = cj.explain


@pytest.mark.parametrize("act", [nn.relu, nn.selu, nn.gelu], ids=["relu", "selu", "gelu"])
def test_guided_and_deconv_backward_rules(act):
  x = jnp.asarray(np.random.RandomState(0).randn(1000), jnp.float32)
  dy = jnp.asarray(np.random.RandomState(1).randn(1000), jnp.float32)
  y, pull = jax.vjp(E.guided(act), x)
  np.testing.assert_array_equal(y, act(x))  # same forward value
  slope = jax.vmap(jax.grad(act))(x)
  np.testing.assert_allclose(pull(dy)[0], slope * jnp.maximum(dy, 0), rtol=1e-5, atol=1e-6)
  y, pull = jax.vjp(E.deconv(act), x)
  np.testing.assert_array_equal(y, act(x))
  np.testing.assert_array_equal(pull(dy)[0], jnp.maximum(dy, 0))


def test_guided_relu_is_springenbergs_rule():
  x = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0, 3.0])
  dy = jnp.array([1.0, -1.0, 1.0, -1.0, 2.0, -3.0])
  _, pull = jax.vjp(E.guided_relu, x)
  np.testing.assert_array_equal(pull(dy)[0], (x > 0) * (dy > 0) * dy)
  assert E.guided(nn.relu) is E.guided_relu  # cached: cloned models compare equal


@pytest.fixture(scope="module")
def guided_model(tiny):
  model, variables, x = tiny
  return model.clone(act=E.guided_relu), variables, x


def _unit_grad(model, variables, x, layer, pick):
  def score(z):
    _, taps = cj.models.apply_with_taps(model, variables, z, [layer])
    return pick(taps[layer]).sum()
  return jax.grad(score)(x)


def test_single_neuron_and_whole_channel(tiny, guided_model):
  model, variables, x = tiny
  guided, _, _ = guided_model
  layer = "block3_conv1"  # (B, 8, 8, 64)
  acts = np.asarray(E.activations(model, variables, x, layer)[layer])
  # each image's most active unit, as seeds 000/004 trace it back: per-image indices
  y, w, c = np.unravel_index(acts.reshape(2, -1).argmax(-1), acts.shape[1:])
  ours = E.guided_backprop(model, variables, x, neuron=(layer, y, w, c))
  for b in range(2):
    ref = _unit_grad(guided, variables, x, layer, lambda a, b=b: a[b, y[b], w[b], c[b]])
    np.testing.assert_allclose(ours[b], ref[b], rtol=1e-5, atol=1e-8)
    assert float(jnp.abs(ref[b]).max()) > 0
  ours = E.guided_backprop(model, variables, x, channel=(layer, int(c[0])))
  ref = _unit_grad(guided, variables, x, layer, lambda a: a[..., c[0]])
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)
  ours = E.deconvnet(model, variables, x, neuron=(layer, 3, 5, int(c[1])))
  ref = _unit_grad(model.clone(act=E.deconv(nn.relu)), variables, x, layer,
                   lambda a: a[:, 3, 5, c[1]])
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


def test_guided_backprop_of_a_selu_model_uses_the_guided_selu(tiny):
  """Seed 000's selu network: the same swap, the activation's own slope kept."""
  model, variables, x = tiny
  selu_model = model.clone(act=nn.selu)
  ours = E.guided_backprop(selu_model, variables, x, 1)
  ref = jax.grad(lambda z: model.clone(act=E.guided(nn.selu)).apply(variables, z)[:, 1].sum())(x)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_guided_grad_cam_is_guided_backprop_times_the_upsampled_cam(tiny):
  model, variables, x = tiny
  ours = E.guided_grad_cam(model, variables, x, "block4_conv1", 2)
  heat = E.normalize(E.upsample(E.grad_cam(model, variables, x, "block4_conv1", 2), (32, 32)))
  np.testing.assert_allclose(ours, E.guided_backprop(model, variables, x, 2) * heat[..., None],
                             rtol=1e-5, atol=1e-8)
  several = E.guided_grad_cam(model, variables, x, "block4_conv1", [2, 3])
  assert several.shape == (2, 2, 32, 32, 3)
  np.testing.assert_allclose(several[:, 0], ours, rtol=1e-5, atol=1e-8)

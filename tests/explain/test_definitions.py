"""Explainers against their definitions, on the tiny BN net (fast to compile)."""
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain import cam as cam_lib
from cnnviz_jax.explain import maps

E = cj.explain
LAYER = "block4_conv1"  # (B, 8, 8, 96) at 32 px


def _score(model, variables, k):
  return lambda z: model.apply(variables, z)[:, k].sum()


class _SmoothNet(nn.Module):
  """A user-written model (not from the registry): conv-act-pool-conv-act-mean-dense."""
  act: Callable = nn.tanh  # smooth: selu's slope jumps at 0

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.avg_pool(self.act(nn.Conv(8, (3, 3), param_dtype=x.dtype, name="conv1")(x)), (2, 2),
                    (2, 2))
    x = self.act(nn.Conv(8, (3, 3), param_dtype=x.dtype, name="conv2")(x))
    return nn.Dense(3, param_dtype=x.dtype, name="head")(jnp.mean(x, axis=(1, 2)))


@pytest.mark.slow
def test_gradient_matches_finite_differences():
  """float64 and a smooth user-written net, so central differences are exact to ~1e-9."""
  with jax.enable_x64(True):
    model = _SmoothNet()
    x = jnp.asarray(np.random.RandomState(4).randn(2, 12, 12, 3))
    variables = cj.models.initialize(model, jax.random.key(0), x)
    grads = E.gradient(model, variables, x, 2)
    direction = jnp.asarray(np.random.RandomState(5).randn(*x.shape))
    eps = 1e-5
    f = _score(model, variables, 2)
    numeric = (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(grads, direction), numeric, rtol=1e-7)
    np.testing.assert_allclose(E.gradient_x_input(model, variables, x, 2), grads * x, rtol=1e-12)
    assert E.resolve_layers(model, variables, x, None) == ["conv2"]


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [None, "blur"])
def test_integrated_gradients_completeness(baseline):
  """sum over pixels of IG = S(x) − S(x'), to the trapezoid rule's O(1/steps²) error.

  On a smooth net: through max-pools the integrand jumps wherever the arg-max switches
  along the path, and the error only falls as O(1/steps) (3% at 64 steps on small_cnn_bn).
  """
  with jax.enable_x64(True):
    model = _SmoothNet()
    x = jnp.asarray(np.random.RandomState(6).randn(2, 12, 12, 3))
    variables = cj.models.initialize(model, jax.random.key(1), x)
    ig = E.integrated_gradients(model, variables, x, 1, baseline=baseline, steps=64,
                                blur_sigma=1.5, chunk=50)
    base = jnp.zeros_like(x) if baseline is None else maps.gaussian_blur(x, 1.5)
    out = model.apply(variables, x)[:, 1] - model.apply(variables, base)[:, 1]
    np.testing.assert_allclose(ig.sum(axis=(1, 2, 3)), out, rtol=1e-4)


@pytest.mark.slow
def test_smoothgrad_is_the_mean_gradient_of_the_noisy_copies(tiny):
  model, variables, x = tiny
  noise = jnp.asarray(np.random.RandomState(5).randn(2, 3, 32, 32, 3) * 0.2, jnp.float32)
  ours = jax.jit(functools.partial(E.smoothgrad, model, target=0, chunk=4))(
      variables, x, noise=noise)
  noisy = (x[:, None] + noise).reshape(6, 32, 32, 3)
  ref = jnp.mean(E.gradient(model, variables, noisy, 0).reshape(2, 3, 32, 32, 3), axis=1)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
  drawn = jax.jit(functools.partial(E.smoothgrad, model, samples=4))(variables, x)
  assert drawn.shape == x.shape and bool(jnp.all(jnp.isfinite(drawn)))


def _acts_and_grads(model, variables, x, k):
  _, acts, pull = E.layer_vjp(model, variables, x, [LAYER])
  grads = pull(jax.nn.one_hot(jnp.full((x.shape[0],), k), 4))
  return np.asarray(acts[LAYER], np.float64), np.asarray(grads[LAYER], np.float64)


@pytest.mark.slow
def test_grad_cam_and_plus_plus_equal_their_formulas(tiny):
  model, variables, x = tiny
  a, g = _acts_and_grads(model, variables, x, 1)
  grad_cam = np.maximum(np.sum(a * g.mean(axis=(1, 2), keepdims=True), -1), 0)
  np.testing.assert_allclose(E.grad_cam(model, variables, x, LAYER, 1), grad_cam,
                             rtol=1e-4, atol=1e-6)
  sum_a = a.sum(axis=(1, 2), keepdims=True)
  denom = 2 * g**2 + sum_a * g**3  # the paper's eq. 19
  alpha = np.divide(g**2, denom, out=np.zeros_like(g), where=denom != 0)
  weights = np.sum(alpha * np.maximum(g, 0), axis=(1, 2), keepdims=True)
  plus_plus = np.maximum(np.sum(a * weights, -1), 0)
  np.testing.assert_allclose(E.grad_cam_plus_plus(model, variables, x, LAYER, 1), plus_plus,
                             rtol=1e-4, atol=1e-6)
  layer_cam = np.maximum(np.sum(np.maximum(g, 0) * a, -1), 0)
  np.testing.assert_allclose(E.layer_cam(model, variables, x, LAYER, 1), layer_cam,
                             rtol=1e-4, atol=1e-6)


def test_grad_cam_backpropagates_only_from_the_layer_upward(tiny):
  """Counted in the program: a forward has 4 convolutions; Grad-CAM at the last conv
  layer adds none (head-only backward), at block3 one (block4's input gradient)."""
  model, variables, x = tiny

  def convs(fn):
    return str(jax.make_jaxpr(fn)(variables, x)).count("conv_general_dilated")

  assert convs(lambda v, z: model.apply(v, z)) == 4
  assert convs(lambda v, z: E.grad_cam(model, v, z, "block4_conv1")) == 4
  assert convs(lambda v, z: E.grad_cam(model, v, z, "block3_conv1")) == 5
  assert convs(lambda v, z: E.gradient(model, v, z)) == 4 + 4  # full backward


def test_layer_none_is_the_last_spatial_layer(tiny):
  model, variables, x = tiny
  np.testing.assert_array_equal(E.grad_cam(model, variables, x),
                                E.grad_cam(model, variables, x, LAYER))
  assert E.resolve_layers(model, variables, x, None) == [LAYER]


@pytest.mark.slow
def test_score_cam_equals_its_definition_with_dead_channels(tiny):
  """Brute force over channels (one masked forward each), with some channels dead so the
  shared zero-image forward and uneven chunks are exercised."""
  model, variables, x = tiny
  bias = variables["params"][LAYER]["bn"]["bias"]
  variables = jax.tree.map(lambda v: v, variables)
  variables["params"][LAYER]["bn"]["bias"] = bias.at[::3].set(-100.0)  # every 3rd channel dead
  acts = np.asarray(E.activations(model, variables, x, LAYER)[LAYER])
  assert np.all(acts[..., ::3] == 0)
  scores = np.zeros((2, acts.shape[-1]))
  for c in range(acts.shape[-1]):
    mask = maps.normalize(maps.upsample(acts[..., c], (32, 32), align_corners=True), eps=1e-8)
    scores[:, c] = np.asarray(model.apply(variables, x * mask[..., None]))[[0, 1], [2, 0]]
  weights = np.exp(scores - scores.max(1, keepdims=True))
  weights /= weights.sum(1, keepdims=True)
  ref = np.maximum(np.einsum("bhwc,bc->bhw", acts, weights), 0)
  ours = jax.jit(functools.partial(E.score_cam, model, layer=LAYER, chunk=7))(
      variables, x, target=jnp.array([2, 0]))
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_score_cam_several_targets_share_the_masked_forwards(tiny):
  model, variables, x = tiny
  both = E.score_cam(model, variables, x, LAYER, [0, 3], chunk=64)
  np.testing.assert_allclose(both[:, 1], E.score_cam(model, variables, x, LAYER, 3, chunk=64),
                             rtol=1e-5, atol=1e-6)


def test_eigen_projection_sign_follows_the_loadings():
  acts = jnp.asarray(np.random.RandomState(6).rand(2, 5, 5, 8), jnp.float32)
  proj = cam_lib.eigen_projection(acts)
  flat = acts.reshape(2, 25, 8) - acts.reshape(2, 25, 8).mean(1, keepdims=True)
  direction = jnp.linalg.lstsq(flat[0], proj[0].reshape(-1))[0]  # recovers the loadings
  assert float(direction.sum()) >= 0
  np.testing.assert_allclose(cam_lib.eigen_projection(-acts), -proj, atol=1e-5)


def test_activations_and_filters(tiny):
  model, variables, x = tiny
  acts = E.activations(model, variables, x)
  assert list(acts) == cj.models.layer_names(model, variables, x)
  _, taps = cj.models.apply_with_taps(model, variables, x, ["block2"])
  np.testing.assert_array_equal(acts["block2"], taps["block2"])
  kernel = variables["params"]["block1_conv1"]["conv"]["kernel"]
  raw = E.filters(model, variables, normalize=False)  # the first layer's
  np.testing.assert_array_equal(raw, jnp.transpose(kernel, (3, 0, 1, 2)))
  shown = E.filters(model, variables, x, "block2_conv1")
  assert shown.shape == (32, 3, 3, 16) and float(shown.min()) == 0
  np.testing.assert_allclose(shown.max(axis=(1, 2, 3)), 1, atol=1e-6)

"""DeepLIFT, DeepLiftShap and LayerDeepLift: their rules against the definitions, Captum 0.9
on converted torchvision models, and summation-to-delta.

Captum runs on `captum_views.own_modules(reference, clone_before_pools=True)` with its
max-pool rule unpooling by the pool's gradient (`summed_max_pool_rule`): its rules as
deep_lift.py writes them. As shipped, its hooks drop the max-pool rule after a ReLU and its
unpooling drops windows that share a maximum; the last test measures what that costs.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain.deep_lift import deep_lift, deep_lift_shap, layer_deep_lift
from cnnviz_jax.explain.rescale import rescale, rescale_max_pool
from cnnviz_jax.models.layers import window_max_pool

TARGETS = [3, 7]
SIZES = {"resnet18": 64, "resnet50": 64, "vgg11": 32, "vgg16": 32}


def test_rescale_rule_is_the_secant_slope_of_each_input_against_its_baseline():
  rng = np.random.RandomState(0)
  x, base, dy = (jnp.asarray(rng.randn(50), jnp.float32) for _ in range(3))
  base = base.at[:5].set(x[:5])  # Δin = 0: the plain gradient, each half its own
  y, pull = jax.vjp(rescale(nn.relu), jnp.concatenate([x, base]))
  np.testing.assert_array_equal(y, nn.relu(jnp.concatenate([x, base])))
  dx = pull(jnp.concatenate([dy, 2 * dy]))[0]
  slope = (nn.relu(x) - nn.relu(base)) / (x - base)
  np.testing.assert_allclose(dx[5:50], dy[5:] * slope[5:], rtol=1e-6)
  np.testing.assert_allclose(dx[55:], 2 * dy[5:] * slope[5:], rtol=1e-6)
  np.testing.assert_array_equal(dx[:5], dy[:5] * (x[:5] > 0))
  np.testing.assert_array_equal(dx[50:55], 2 * dy[:5] * (x[:5] > 0))


def test_max_pool_rule_moves_each_windows_difference_to_the_two_maxima():
  """One window [a b c d] of the input against [a' b' c' d'] of the baseline: the output
  difference y − y' goes to the input's arg-max (m − y') and the baseline's (y − m),
  m = max(y, y'), each divided by its position's Δin; a 4×4 map of 2×2 windows."""
  rng = np.random.RandomState(1)
  x, base = rng.randn(1, 4, 4, 1), rng.randn(1, 4, 4, 1)
  pool = rescale_max_pool(window_max_pool)
  both = jnp.asarray(np.concatenate([x, base]), jnp.float32)
  dy = jnp.asarray(rng.randn(2, 2, 2, 1), jnp.float32).at[1].set(0)  # seed the input half
  dx = jax.vjp(lambda z: pool(z, 2, 2), both)[1](dy)[0]
  expected = np.zeros((4, 4))
  for i in range(2):
    for j in range(2):
      win, win_base = x[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0], base[0, 2 * i:2 * i + 2,
                                                                      2 * j:2 * j + 2, 0]
      y, y_base = win.max(), win_base.max()
      m = max(y, y_base)
      a, b = np.unravel_index(win.argmax(), (2, 2)), np.unravel_index(win_base.argmax(), (2, 2))
      expected[2 * i + a[0], 2 * j + a[1]] += float(dy[0, i, j, 0]) * (m - y_base)
      expected[2 * i + b[0], 2 * j + b[1]] += float(dy[1, i, j, 0]) * (y - m)
  delta = (x - base)[0, ..., 0]
  np.testing.assert_allclose(dx[0, ..., 0], expected / delta, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dx[1, ..., 0], expected / delta, rtol=1e-5, atol=1e-6)


def test_deep_lift_sums_to_the_output_difference_at_the_input_and_at_a_layer(tiny):
  """Summation-to-delta on the BN net (convolutions, BatchNorm, max-pools, a dense head):
  Σ over the input's values, and over a layer's units, = S(x) − S(x'), every target."""
  model, variables, x = tiny
  base = 0.5 * x[::-1] + 0.1
  both = jax.jit(lambda v, z: (deep_lift(model, v, z, [0, 3], base),
                               layer_deep_lift(model, v, z, "block2", [0, 3], base)))
  at_input, at_layer = both(variables, x)
  outputs = model.apply(variables, jnp.concatenate([x, base]))
  difference = np.asarray(outputs[:2, [0, 3]] - outputs[2:, [0, 3]])
  np.testing.assert_allclose(at_input.sum(axis=(2, 3, 4)), difference, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(at_layer.sum(axis=(2, 3, 4)), difference, rtol=1e-4, atol=1e-6)


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _case(torch_pair, arch, seed=1):
  torch = pytest.importorskip("torch")
  reference, model, variables = torch_pair(arch)
  size = SIZES[arch]
  x = np.random.RandomState(seed).randn(2, size, size, 3).astype(np.float32)
  base = 0.3 * np.random.RandomState(seed + 1).randn(2, size, size, 3).astype(np.float32)
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
  return reference, model, variables, x, base, nchw


@pytest.fixture
def captum_rules(monkeypatch):
  captum_views = pytest.importorskip("captum_views")
  captum_views.summed_max_pool_rule(monkeypatch)
  return captum_views


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(SIZES))
def test_deep_lift_equals_captum_and_sums_to_the_output_difference(torch_pair, close, arch,
                                                                   captum_rules):
  from captum.attr import DeepLift  # pylint: disable=import-outside-toplevel
  reference, model, variables, x, base, nchw = _case(torch_pair, arch)
  peer = captum_rules.own_modules(reference, clone_before_pools=True)
  ref = DeepLift(peer).attribute(nchw(x), nchw(base), target=TARGETS)
  ours = captum_rules.jit_call(deep_lift, model, variables, x, target=np.array(TARGETS),
                              baseline=base)
  close(ours, _nhwc(ref))
  outputs = np.asarray(model.apply(variables, jnp.asarray(np.concatenate([x, base]))))
  difference = outputs[[0, 1], TARGETS] - outputs[[2, 3], TARGETS]
  np.testing.assert_allclose(np.asarray(ours).sum(axis=(1, 2, 3)), difference, rtol=1e-4,
                             atol=1e-5 * np.abs(difference).max())


@pytest.mark.slow
def test_deep_lift_shap_equals_captum(torch_pair, close, captum_rules):
  from captum.attr import DeepLiftShap  # pylint: disable=import-outside-toplevel
  reference, model, variables, x, base, nchw = _case(torch_pair, "vgg11")
  peer = captum_rules.own_modules(reference, clone_before_pools=True)
  ref = DeepLiftShap(peer).attribute(nchw(x), nchw(base), target=TARGETS)  # 2 references
  close(captum_rules.jit_call(deep_lift_shap, model, variables, x, target=np.array(TARGETS),
                              baselines=base), _nhwc(ref))


@pytest.mark.slow
def test_layer_deep_lift_equals_captum(torch_pair, close, captum_rules):
  from captum.attr import LayerDeepLift  # pylint: disable=import-outside-toplevel
  reference, model, variables, x, base, nchw = _case(torch_pair, "resnet18")
  peer = captum_rules.own_modules(reference, clone_before_pools=True)
  ref = LayerDeepLift(peer, peer.layer3).attribute(nchw(x), nchw(base), target=TARGETS)
  ours = captum_rules.jit_call(layer_deep_lift, model, variables, x, layer="layer3",
                              target=np.array(TARGETS), baseline=base)
  close(ours, _nhwc(ref))


@pytest.mark.slow
def test_captum_as_shipped_does_not_sum_to_the_output_difference(torch_pair, captum_rules):
  """What rescale.py's two departures from Captum as shipped are worth, in Captum's own
  convergence delta (Σ attribution − ΔS): on stock VGG-11 its max-pool rule is lost after
  each ReLU; with that fixed, on ResNet-18 max_unpool2d drops the stem pool's shared maxima.
  Ours (and Captum's rules as written, above) sum to ΔS."""
  from captum.attr import DeepLift  # pylint: disable=import-outside-toplevel
  # pylint: disable-next=import-outside-toplevel
  from captum.attr._core import deep_lift as captum_deep_lift
  torch = pytest.importorskip("torch")
  ratios = {}
  for arch, stock in (("vgg11", True), ("resnet18", False)):
    reference, _, _, x, base, nchw = _case(torch_pair, arch)
    peer = reference if stock else captum_rules.own_modules(reference, clone_before_pools=True)
    rule = captum_deep_lift.SUPPORTED_NON_LINEAR[torch.nn.MaxPool2d]
    if not stock:  # max_unpool2d as shipped
      captum_deep_lift.SUPPORTED_NON_LINEAR[torch.nn.MaxPool2d] = captum_deep_lift.maxpool2d
    try:
      _, delta = DeepLift(peer).attribute(nchw(x), nchw(base), target=TARGETS,
                                          return_convergence_delta=True)
    finally:
      captum_deep_lift.SUPPORTED_NON_LINEAR[torch.nn.MaxPool2d] = rule
    with torch.no_grad():
      out, out_base = peer(nchw(x)), peer(nchw(base))
    difference = (out - out_base)[[0, 1], TARGETS]
    ratios[arch] = float((delta.abs() / difference.abs()).max())
  print(f" [Captum's |delta| / |ΔS|: {ratios}]", end="")
  assert min(ratios.values()) > 0.01, ratios

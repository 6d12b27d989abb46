"""FullGrad equals pytorch-grad-cam's FullGrad: converted random-weight torchvision models
(torch_pair: ResNets' BatchNorms, VGGs' conv biases) and the real EfficientNet-Lite0 on
photographs; the same images and targets on both sides. Theirs returns maps normalized at the
input size, as ours.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain.full_grad import _with_bias_deltas, full_grad

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from test_ablation_cam import _oriented_projection  # noqa: E402  pylint: disable=C0413


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _peer(reference, x, targets=None, **call):
  with pgc.FullGrad(reference, []) as method:
    return method(_nchw(x), targets=targets, **call)


def _ours(model, variables, x, **kwargs):
  return np.asarray(jax.jit(functools.partial(full_grad, model, **kwargs))(variables, x))


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", [("resnet18", 64), ("resnet50", 64), ("vgg11", 32),
                                       ("vgg16", 32)])
def test_full_grad_equals_pytorch_grad_cam(torch_pair, close, arch, size):
  reference, model, variables = torch_pair(arch)
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  targets = [2, 7]
  ref = _peer(reference, x, [ClassifierOutputTarget(t) for t in targets])
  close(_ours(model, variables, x, target=np.array(targets)), ref)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["aug_smooth", "eigen_smooth"])
def test_full_grad_smoothing_equals_pytorch_grad_cam(torch_pair, close, monkeypatch, option):
  """aug_smooth: each variant for its own top-1 class. eigen_smooth: the 3 + L part maps
  shrunk 8×, projected on their first principal component (its sign oriented as ours on
  their side: `_oriented_projection`; LAPACK's sign gives 1 - map on these inputs) and
  resized back."""
  monkeypatch.setattr(pgc.fullgrad_cam, "get_2d_projection", _oriented_projection)
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(2).randn(2, 64, 64, 3).astype(np.float32)
  close(_ours(model, variables, x, **{option: True}), _peer(reference, x, **{option: True}))


def test_bias_gradients_complete_the_score(tiny):
  """Srinivas & Fleuret's full-gradient completeness, for a network of convolutions, eval-mode
  BatchNorms, ReLUs, max-pools and dense layers: S(x) = ∇_x S·x + Σ over every bias
  (∇_b S)·b. full_grad's interceptor supplies the convolution and BatchNorm terms (BN's
  implicit bias β - μγ/√(σ²+ε), its gradient summed over positions); the dense head's bias
  term is jax.grad's with respect to its parameter."""
  model, variables, x = tiny
  forward = lambda z: model.apply(variables, z)[:, 1]  # noqa: E731
  shapes = jax.eval_shape(lambda z: _with_bias_deltas(forward, z, None)[1], x)
  assert len(shapes) == 4  # the four BatchNorms (small_cnn_bn's convolutions have no bias)

  @jax.jit
  def parts(z):
    zeros = {path: jnp.zeros(s.shape, s.dtype) for path, s in shapes.items()}
    scores, pull, biases = jax.vjp(lambda z, d: _with_bias_deltas(forward, z, d), z, zeros,
                                   has_aux=True)
    return scores, pull(jnp.ones_like(scores)), biases

  scores, (x_grad, bias_grads), biases = parts(x)
  total = np.sum(np.asarray(x_grad * x), axis=(1, 2, 3))
  for path, bias in biases.items():
    total += np.einsum("bhwc,c->b", np.asarray(bias_grads[path]), np.asarray(bias))
  head_bias = variables["params"]["head"]["predictions"]["bias"]
  total += head_bias[1]  # dS/d(bias of output 1) = 1 for every image
  np.testing.assert_allclose(total, np.asarray(scores), rtol=1e-5, atol=1e-5)


def test_full_grad_targets_share_one_forward_pass_and_equal_single_calls(tiny, close):
  """Several targets: the maps of one call per target, stacked (K axis after the batch)."""
  model, variables, x = tiny
  call = jax.jit(lambda v, z, t: full_grad(model, v, z, target=t))
  together = np.asarray(call(variables, x, np.array([[1, 3], [1, 3]])))
  for k, target in enumerate([1, 3]):
    close(together[:, k], call(variables, x, np.array([target, target])), tol=1e-6)
  assert together.shape == (2, 2, *x.shape[1:3])
  assert together.min() >= 0 and together.max() <= 1


@pytest.mark.slow
def test_full_grad_on_real_photos_equals_pytorch_grad_cam(lite0_imagenet, lite0_inputs, close):
  """The ImageNet EfficientNet-Lite0 on chelsea and coffee, each image's top-1 class. Its
  convolutions have no bias, so FullGrad's layers are its 49 BatchNorms (their eval-mode
  implicit biases), found in our model inside each conv-BN-ReLU6 unit by the interceptor on
  nn.BatchNorm: the gradient is taken at the BatchNorm's output, before the ReLU6, which is
  where the peer's hook on nn.BatchNorm2d takes it too (as shipped: no peer view needed).
  Tolerance 1e-3: in float32 the peer is 3.1e-4 of the map from its own float64 result (at
  one pixel of coffee, where we differ from it by as much), ours 6e-5 from ours; with both
  sides in float64 the two agree to 7e-7 (measured; a float64 run costs 20 s more)."""
  reference, model, variables, _ = lite0_imagenet
  x = lite0_inputs[1]
  with torch.no_grad():
    top1 = reference(_nchw(x)).argmax(1).numpy()
  ref = _peer(reference, x, [ClassifierOutputTarget(int(c)) for c in top1])
  assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in reference.modules()) == 49
  close(_ours(model, variables, x, target=top1), ref, tol=1e-3)

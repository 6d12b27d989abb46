"""The CAM family equals pytorch-grad-cam (public API) on converted torchvision models.

Both sides see the same weights (random, randomized BN statistics) and images. The
reference returns maps min-max normalized and cv2-resized to the input; ours are at
layer resolution, so we compare normalize(upsample(ours)) — resizing and min-max
scaling commute for bilinear interpolation, so this is exact up to float error.
ResNet-18 runs at 128 px (layer4 is 4×4: XLA-CPU convolutions on 2×2 maps are ~50×
slower per FLOP than on 4×4, see the report).
"""
import functools

import jax
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain import cam as cam_lib
from cnnviz_jax.explain import maps

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection  # noqa: E402

E = cj.explain


@pytest.fixture(scope="module")
def resnet(torch_pair):
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(1).randn(2, 128, 128, 3).astype(np.float32)
  return reference, model, variables, x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _reference(cls, reference, layers, x_torch, targets=None, **call):
  with cls(reference, layers) as method:
    method.batch_size = 64  # Score-CAM's masked batch; ignored by the others
    return method(x_torch, targets=targets, **call)


def _ours(fn, model, variables, x, **kwargs):
  out = jax.jit(functools.partial(fn, model, **kwargs))(variables, x)
  return np.asarray(maps.normalize(maps.upsample(out, x.shape[1:3])))


@pytest.mark.slow
@pytest.mark.parametrize("ours,theirs,kwargs", [
    (E.grad_cam, "GradCAM", {}),
    (E.grad_cam_plus_plus, "GradCAMPlusPlus", {"eps": 1e-6}),  # their denominator epsilon
    (E.xgrad_cam, "XGradCAM", {}),
    (E.layer_cam, "LayerCAM", {}),
], ids=["grad_cam", "grad_cam_plus_plus", "xgrad_cam", "layer_cam"])
def test_gradient_cams_equal_pytorch_grad_cam_top1(resnet, close, ours, theirs, kwargs):
  reference, model, variables, x, x_torch = resnet
  ref = _reference(getattr(pgc, theirs), reference, [reference.layer4], x_torch)
  close(_ours(ours, model, variables, x, layer="layer4", **kwargs), ref)


def test_grad_cam_plus_plus_paper_form_differs_only_by_their_epsilon(resnet, close):
  """Default eps=0 is the paper's eq. 19; pytorch-grad-cam's +1e-6 moves small-gradient maps."""
  reference, model, variables, x, x_torch = resnet
  ref = _reference(pgc.GradCAMPlusPlus, reference, [reference.layer4], x_torch)
  paper = _ours(E.grad_cam_plus_plus, model, variables, x, layer="layer4")
  tiny_eps = _ours(E.grad_cam_plus_plus, model, variables, x, layer="layer4", eps=1e-12)
  close(tiny_eps, paper, tol=1e-4)  # eps -> 0 converges to the closed form
  assert np.abs(paper - ref).max() < 0.1  # same map shape, shifted by their epsilon


@pytest.mark.slow
def test_grad_cam_explicit_targets_and_vgg(torch_pair, close):
  reference, model, variables = torch_pair("vgg11")
  x = np.random.RandomState(2).randn(2, 64, 64, 3).astype(np.float32)
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  ref = _reference(pgc.GradCAM, reference, [reference.features[-1]], x_torch,
                   [ClassifierOutputTarget(4), ClassifierOutputTarget(9)])
  close(_ours(E.grad_cam, model, variables, x, layer="block5", target=np.array([4, 9])), ref)


def test_several_layers_combined_as_pytorch_grad_cam(resnet, close):
  reference, model, variables, x, x_torch = resnet
  ref = _reference(pgc.GradCAM, reference, [reference.layer3, reference.layer4], x_torch)
  ours = jax.jit(functools.partial(E.grad_cam, model, layer=["layer3", "layer4"],
                                   size=(128, 128)))(variables, x)
  close(ours, ref)


def test_aug_smooth_equals_pytorch_grad_cam(resnet, close):
  reference, model, variables, x, x_torch = resnet
  ref = _reference(pgc.GradCAM, reference, [reference.layer4], x_torch, aug_smooth=True)
  ours = jax.jit(functools.partial(E.grad_cam, model, layer="layer4", aug_smooth=True,
                                   size=(128, 128)))(variables, x)
  close(ours, ref)  # normalized at the output size, as theirs (min-max and resizing
                    # do not commute when an extremum lies between output pixels)


def test_eigen_cam_equals_pytorch_grad_cam(resnet, close):
  """Same map; the SVD sign is arbitrary in both (ours fixed by a convention, theirs
  LAPACK's) and agrees on these inputs. The projection itself is checked up to sign."""
  reference, model, variables, x, x_torch = resnet
  ref = _reference(pgc.EigenCAM, reference, [reference.layer4], x_torch)
  close(_ours(E.eigen_cam, model, variables, x, layer="layer4"), ref)
  acts = np.random.RandomState(3).randn(3, 4, 5, 16).astype(np.float32)  # (B, h, w, C)
  theirs = get_2d_projection(acts.transpose(0, 3, 1, 2))
  ours = np.asarray(cam_lib.eigen_projection(acts))
  for o, t in zip(ours, theirs):
    # float32 SVDs by different LAPACK paths: agree to ~1e-5 of the projection's scale
    assert min(np.abs(o - t).max(), np.abs(o + t).max()) < 1e-4 * max(1.0, np.abs(t).max())


@pytest.mark.slow
def test_score_cam_equals_pytorch_grad_cam(resnet, close):
  """Their Score-CAM: align_corners upsampling, 1e-8 normalizer, softmax over channels."""
  reference, model, variables, x, x_torch = resnet  # one image: 512 masked forwards each
  ref = _reference(pgc.ScoreCAM, reference, [reference.layer4], x_torch[:1],
                   [ClassifierOutputTarget(3)])
  close(_ours(E.score_cam, model, variables, x[:1], layer="layer4", target=3, chunk=128), ref)

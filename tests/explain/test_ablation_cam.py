"""Ablation-CAM equals pytorch-grad-cam's AblationCAM; Score-CAM's eigen_smooth and
aug_smooth equal its ScoreCAM's. Converted random-weight torchvision models (tests/explain
conftest's torch_pair), the same images and targets on both sides.

AblationCAM runs the whole torch network for every ablated channel (1,024 to 4,096 forwards
here). Where that would cost minutes, the peer gets the network from the layer upward
instead: `_Upper` takes the layer's activations as its input and passes them through an
identity module, the peer's target layer, then the reference's own upper modules. Its
ablated forwards then compute exactly what the full network computes from the ablated layer
(pytorch-grad-cam replaces the layer's output and ignores what feeds it); each test checks
that `_Upper` on the reference's activations gives the reference's logits, and one test runs
the peer on the whole network. The peer's maps are then at the layer's resolution
(normalized): ours are compared normalized.
"""
import copy
import functools

import jax
import numpy as np
import pytest

from cnnviz_jax.explain import maps
from cnnviz_jax.explain.ablation_cam import ablation_cam
from cnnviz_jax.explain.score_cam import score_cam
from cnnviz_jax.explain.targets import neuron
from cnnviz_jax.models.taps import apply_with_taps

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

# pylint: disable=protected-access  # the EfficientNet-Lite reference's own modules


class _Upper(torch.nn.Module):
  """The reference from a layer upward: input = that layer's activations (NCHW)."""

  def __init__(self, *modules):
    super().__init__()
    self.tap = torch.nn.Identity()
    self.rest = torch.nn.Sequential(*modules)

  def forward(self, x):  # pylint: disable=arguments-renamed
    return self.rest(self.tap(x))


def _upper(reference, arch: str, layer: str) -> tuple[_Upper, torch.nn.Module]:
  """(the reference above `layer`, the module whose output `layer` is)."""
  flat = torch.nn.Flatten(1)
  if arch.startswith("resnet"):
    above = {"layer3": [reference.layer4], "layer4": []}[layer]
    return (_Upper(*above, reference.avgpool, flat, reference.fc),
            getattr(reference, layer))
  pools = [i for i, m in enumerate(reference.features) if isinstance(m, torch.nn.MaxPool2d)]
  end = pools[int(layer[-1]) - 1]  # 'block{b}' ends with the b-th max-pool
  return (_Upper(*reference.features[end + 1:], reference.avgpool, flat, reference.classifier),
          reference.features[end])


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _activations(module, reference, x_torch):
  """The output of `module` (its last call) when the reference runs x_torch, and the
  reference's logits."""
  seen = []
  handle = module.register_forward_hook(lambda m, i, out: seen.append(out.detach().clone()))
  with torch.no_grad():
    logits = reference(x_torch)
  handle.remove()
  return seen[-1], logits


def _peer_ablation(model, layer_module, inputs, targets, **call):
  with pgc.AblationCAM(model, [layer_module]) as method:
    return method(inputs, targets=targets, **call)


def _normalized(ours):
  return np.asarray(maps.normalize(ours))


def _ours(fn, model, variables, x, **kwargs):
  return np.asarray(jax.jit(functools.partial(fn, model, **kwargs))(variables, x))


def test_ablation_cam_equals_its_definition_for_a_neuron_target(tiny, close):
  """By brute force, one channel at a time through apply_with_taps' deltas (the layer's
  output plus minus the channel), the target an inner unit: channel 5 of 'block4_conv1'."""
  model, variables, x = tiny
  layer, unit = "block3_conv1", "block4_conv1"
  _, acts = apply_with_taps(model, variables, x, [layer, unit])
  a, score = acts[layer], acts[unit][..., 5].sum((1, 2))
  assert float(a.min()) == 0  # after a ReLU: channels ablate to 0
  ablated = jax.jit(lambda delta: apply_with_taps(model, variables, x, [unit], {layer: delta})[
      1][unit][..., 5].sum((1, 2)))
  weights = []
  for c in range(a.shape[-1]):
    delta = np.zeros(a.shape, np.float32)
    delta[..., c] = -a[..., c]
    weights.append((score - ablated(delta)) / score)
  expected = jax.nn.relu(np.einsum("bhwc,cb->bhw", a, np.stack(weights)))
  close(_ours(ablation_cam, model, variables, x, layer=layer, target=neuron(unit, 5), chunk=5),
        expected)


@pytest.mark.slow
def test_ablation_cam_equals_pytorch_grad_cam_on_the_whole_network(torch_pair, close):
  """ResNet-18 at 64 px, layer4 (2×2×512): the peer runs 1,024 full forwards."""
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(1).randn(2, 64, 64, 3).astype(np.float32)
  targets = [3, 8]
  ref = _peer_ablation(reference, reference.layer4, _nchw(x),
                       [ClassifierOutputTarget(t) for t in targets])
  assert ref.max() > 0.5  # not an all-zero map
  ours = _ours(ablation_cam, model, variables, x, layer="layer4", target=np.array(targets),
               size=(64, 64))  # normalized at the input size, as theirs
  close(ours, ref)


@pytest.mark.slow
@pytest.mark.parametrize("arch,size,images,layer,peer_float64", [
    ("resnet18", 128, 2, "layer3", False),  # layer4 at 4×4: see the aug_smooth test
    # 2,048 channels: removing one moves a score by ~1e-4 of itself, so a weight
    # (S - S_k) / S is a difference of nearly equal scores. In float32 theirs carry 1.6e-4
    # of the map's rounding (against float64); ours 1.6e-5 (S comes from the same batched
    # pass as the S_k, so their roundings correlate and cancel). Theirs in float64: 8e-6.
    ("resnet50", 64, 2, "layer4", True),
    ("vgg11", 32, 1, "block2", False), ("vgg16", 64, 1, "block5", False)])
def test_ablation_cam_equals_pytorch_grad_cam_from_the_layer_up(torch_pair, close, arch, size,
                                                                images, layer, peer_float64):
  reference, model, variables = torch_pair(arch)
  x = np.random.RandomState(2).randn(images, size, size, 3).astype(np.float32)
  upper, layer_module = _upper(reference, arch, layer)
  acts, logits = _activations(layer_module, reference, _nchw(x))
  with torch.no_grad():
    close(upper(acts).numpy(), logits.numpy(), tol=1e-5)
  if peer_float64:
    upper, acts = copy.deepcopy(upper).double(), acts.double()
  ref = _peer_ablation(upper.eval(), upper.tap, acts, None)  # top-1
  assert ref.max() > 0.5  # not an all-zero map
  close(_normalized(_ours(ablation_cam, model, variables, x, layer=layer)), ref)


def _oriented_projection(activation_batch):
  """pytorch-grad-cam's get_2d_projection (B, C, h, w) -> (B, h, w), with the direction's
  sign chosen as cam.eigen_projection chooses it (loadings summing to >= 0) instead of
  LAPACK's arbitrary one: the one change, so that both sides' eigen_smooth can be compared
  (after the ReLU a flipped projection is another map)."""
  projections = []
  for activations in np.nan_to_num(activation_batch):
    flat = activations.reshape(activations.shape[0], -1).T
    flat = flat - flat.mean(axis=0)
    direction = np.linalg.svd(flat, full_matrices=True)[2][0]
    direction = -direction if direction.sum() < 0 else direction
    projections.append((flat @ direction).reshape(activations.shape[1:]))
  return np.float32(projections)


@pytest.mark.slow
def test_ablation_cam_eigen_smooth_equals_pytorch_grad_cam(torch_pair, close, monkeypatch):
  """Their eigen_smooth: the weighted activations' first principal component, its sign
  oriented as ours (`_oriented_projection`)."""
  monkeypatch.setattr(pgc.base_cam, "get_2d_projection", _oriented_projection)
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(3).randn(2, 128, 128, 3).astype(np.float32)
  upper, layer_module = _upper(reference, "resnet18", "layer4")
  acts, _ = _activations(layer_module, reference, _nchw(x))
  ref = _peer_ablation(upper.eval(), upper.tap, acts, [ClassifierOutputTarget(5)] * 2,
                       eigen_smooth=True)
  assert ref.max() > 0.5
  ours = _ours(ablation_cam, model, variables, x, layer="layer4", target=5, eigen_smooth=True)
  close(_normalized(ours), ref)


@pytest.mark.slow
@pytest.mark.parametrize("fn,peer", [(ablation_cam, pgc.AblationCAM), (score_cam, pgc.ScoreCAM)],
                         ids=["ablation_cam", "score_cam"])
def test_aug_smooth_equals_pytorch_grad_cam(torch_pair, close, fn, peer):
  """The six flipped and scaled variants, each explained for its own top-1 class, maps
  normalized at the input size, un-flipped, averaged. ResNet-18 at 32 px, layer2 (4×4×128):
  the peer runs 768 forwards of the whole network. (Sizes: XLA-CPU runs ResNet-18 at 32 px
  at 6 ms an image, at 64 px at 54 ms — its convolutions on 2×2 maps are that slow — and at
  128 px at 11 ms.)"""
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(1).randn(1, 32, 32, 3).astype(np.float32)
  with peer(reference, [reference.layer2]) as method:
    method.batch_size = 128
    ref = method(_nchw(x), targets=None, aug_smooth=True)
  assert ref.max() > 0.5
  close(_ours(fn, model, variables, x, layer="layer2", aug_smooth=True, size=(32, 32)), ref)


@pytest.mark.slow
def test_score_cam_eigen_smooth_equals_pytorch_grad_cam(torch_pair, close, monkeypatch):
  """ResNet-18 at 32 px, layer2; the SVD sign as in the Ablation-CAM eigen test."""
  monkeypatch.setattr(pgc.base_cam, "get_2d_projection", _oriented_projection)
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(5).randn(2, 32, 32, 3).astype(np.float32)
  with pgc.ScoreCAM(reference, [reference.layer2]) as method:
    method.batch_size = 128
    ref = method(_nchw(x), targets=[ClassifierOutputTarget(2), ClassifierOutputTarget(6)],
                 eigen_smooth=True)
  assert ref.max() > 0.5
  ours = _ours(score_cam, model, variables, x, layer="layer2", target=np.array([2, 6]),
               eigen_smooth=True, chunk=64)
  close(np.asarray(maps.normalize(maps.upsample(ours, (32, 32)))), ref)


class _LiteUpper(torch.nn.Module):
  """The EfficientNet-Lite reference from 'block7' or 'top' upward: its forward's own steps."""

  def __init__(self, reference, layer: str):
    super().__init__()
    self.tap = torch.nn.Identity()
    self.reference, self.from_block7 = reference, layer == "block7"

  def forward(self, x):  # pylint: disable=arguments-renamed
    ref, x = self.reference, self.tap(x)
    if self.from_block7:
      x = ref._swish(ref._bn1(ref._conv_head(x)))
    return ref._fc(ref._dropout(ref._avg_pooling(x).flatten(1)))


@pytest.mark.slow
@pytest.mark.parametrize("layer,batch_size", [("top", 64), ("block7", 1)])
def test_ablation_cam_on_real_photos_equals_pytorch_grad_cam(lite0_imagenet, lite0_inputs,
                                                             close, layer, batch_size):
  """The ImageNet EfficientNet-Lite0 on chelsea and coffee, each image's top-1 class. 'top'
  (after ReLU6: its minimum is 0) ablates to 0. 'block7' is the last block's linear
  projection, negative values included: a channel ablates to min - 1e7, which is the peer's
  with batch_size=1 (ablation_cam's docstring says why)."""
  reference, model, variables, _ = lite0_imagenet
  x = lite0_inputs[1]
  # the model-level ReLU6 ends both the stem and the top: its last call is the top's
  module = reference._swish if layer == "top" else reference._blocks[-1]
  acts, logits = _activations(module, reference, _nchw(x))
  assert (float(acts.min()) < 0) == (layer == "block7")
  upper = _LiteUpper(reference, layer).eval()
  with torch.no_grad():
    close(upper(acts).numpy(), logits.numpy(), tol=1e-5)
  top1 = logits.argmax(1).numpy()
  with pgc.AblationCAM(upper, [upper.tap], batch_size=batch_size) as method:
    ref = method(acts, targets=[ClassifierOutputTarget(int(c)) for c in top1])
  assert ref.max() > 0.5
  close(_normalized(_ours(ablation_cam, model, variables, x, layer=layer, target=top1)), ref)

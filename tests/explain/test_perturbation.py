"""Occlusion, feature ablation and Shapley value sampling equal Captum's Occlusion,
FeatureAblation, NeuronFeatureAblation and ShapleyValueSampling on converted torchvision
models and on the real EfficientNet-Lite0, with the same inputs, targets, baselines, masks
and permutations; sampled Shapley values converge to the exact ones like 1/√n.

Ours run jitted: one compile of the whole call costs less than the op-by-op compiles of an
eager call (vmapped forwards: ResNet-18 at 64 px, 4 s against 12 s of CPU time). Their chunks
divide the perturbation count (chunk=None: one pass), since a remainder compiles a second
forward; Captum batches as many perturbations per forward (perturbations_per_eval).
"""
import functools

import jax
import numpy as np
import pytest

from cnnviz_jax.explain.perturbation import (feature_ablation, grid_segments, occlusion,
                                             window_cover)
from cnnviz_jax.explain.shapley import shapley_value_sampling
from cnnviz_jax.explain.targets import neuron
from shapley_exact import exact_shapley, per_segment, sampling_error

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
segmentation = pytest.importorskip("skimage.segmentation")

SIZES = {"resnet18": 64, "resnet50": 64, "vgg11": 32, "vgg16": 32}
TARGETS = [3, 7]


def _nchw(a) -> "torch.Tensor":
  return torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2)))


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


def ours(fn, model, variables, x, **kwargs) -> np.ndarray:
  """fn(model, variables, x, **kwargs), jitted (kwargs: static or closed-over constants)."""
  return np.asarray(jax.jit(functools.partial(fn, model, **kwargs))(variables, x))


def _inputs(arch: str, seed: int = 1):
  """(x, baseline): 2 random images and a random per-image baseline."""
  size = SIZES[arch]
  rng = np.random.RandomState(seed)
  x = rng.randn(2, size, size, 3).astype(np.float32)
  return x, (0.3 * rng.randn(*x.shape)).astype(np.float32)


def superpixels(x: np.ndarray, segments: int) -> np.ndarray:
  """(B, H, W) SLIC superpixel ids from 0, per image (their shapes and counts differ).
  On the random images, in their own color space and of low compactness: in Lab, or
  compact, SLIC gives these noise images one segment or a regular grid."""
  ids = np.stack([segmentation.slic(image, n_segments=segments, compactness=0.3,
                                    convert2lab=False, start_label=0, channel_axis=-1)
                  for image in x]).astype(np.int32)
  assert ids.max() >= 4 and len(np.unique(ids[0])) != 1, "SLIC found no superpixels"
  return ids


def _mask(segments: np.ndarray) -> "torch.Tensor":
  """Captum's feature_mask: (B, 1, H, W), shared by the channels."""
  return torch.from_numpy(segments[:, None].astype(np.int64))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_occlusion_equals_captum(torch_pair, close, arch):
  """Windows 3/8 of the side, stride 1/4: they overlap, and the last one is cut off at the
  border (64 px: starts 0, 16, 32, 48 for a 24 px window). ResNet-18: a class and a random
  baseline per image; VGG-11: classes 1 and 4 of every image from one call (B, 2, H, W, C),
  each slice Captum's attribution for that class."""
  reference, model, variables = torch_pair(arch)
  x, baseline = _inputs(arch)
  window, stride = 3 * SIZES[arch] // 8, SIZES[arch] // 4
  if arch == "vgg11":
    baseline, target, peer_targets = 0.0, [1, 4], [1, 4]
  else:
    target, peer_targets = np.array(TARGETS), [TARGETS]
  got = ours(occlusion, model, variables, x, target=target, window=window, stride=stride,
             baseline=baseline, chunk=8)
  for k, peer_target in enumerate(peer_targets):
    ref = captum_attr.Occlusion(reference).attribute(
        _nchw(x), sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
        baselines=baseline if np.isscalar(baseline) else _nchw(baseline), target=peer_target,
        perturbations_per_eval=8)
    close(got[:, k] if arch == "vgg11" else got, _nhwc(ref))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet50", "vgg11"])
def test_feature_ablation_equals_captum_on_superpixels(torch_pair, close, arch):
  """ResNet-50 within 1e-3: its random-weight logits (up to 30) agree to 3e-5 between the
  frameworks' float32 forwards, and a superpixel moves them by only ~0.3, so the drops agree
  to ~1e-4 of their scale (9e-5 measured); VGG-11 within 1e-4."""
  reference, model, variables = torch_pair(arch)
  x, baseline = _inputs(arch)
  segments = superpixels(x, 12)
  ref = captum_attr.FeatureAblation(reference).attribute(
      _nchw(x), baselines=_nchw(baseline), target=TARGETS, feature_mask=_mask(segments),
      perturbations_per_eval=16)
  close(ours(feature_ablation, model, variables, x, target=np.array(TARGETS),
             segments=segments, baseline=baseline, chunk=None), _nhwc(ref),
        tol=1e-3 if arch == "resnet50" else 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("position", [None, (3, 2)])
def test_neuron_target_equals_captum_neuron_feature_ablation(torch_pair, close, position):
  """target=neuron('layer3', 5): channel 5 of layer3 summed over space (Captum: a callable
  neuron selector), or its value at (y, x) = (3, 2) (Captum: the index (5, 3, 2)), which is
  active in both images."""
  reference, model, variables = torch_pair("resnet18")
  x, baseline = _inputs("resnet18")
  segments = grid_segments(x.shape, 4)
  selector = (lambda out: out[:, 5].sum((1, 2))) if position is None else (5, *position)
  ref = captum_attr.NeuronFeatureAblation(reference, reference.layer3).attribute(
      _nchw(x), neuron_selector=selector, baselines=_nchw(baseline),
      feature_mask=_mask(segments), perturbations_per_eval=8)
  assert float(ref.abs().amax(dim=(1, 2, 3)).min()) > 1e-3  # a neuron the segments move
  close(ours(feature_ablation, model, variables, x, target=neuron("layer3", 5, position),
             segments=segments, baseline=baseline, chunk=8), _nhwc(ref))


def torch_permutations(count: int, samples: int, seed: int = 0) -> np.ndarray:
  """(samples, count) orders drawn as Captum's ShapleyValueSampling draws them."""
  torch.manual_seed(seed)
  return np.stack([torch.randperm(count).numpy() for _ in range(samples)])


@pytest.mark.slow
def test_shapley_value_sampling_equals_captum_with_its_permutations(torch_pair, close):
  reference, model, variables = torch_pair("resnet18")
  x, baseline = _inputs("resnet18")
  segments = grid_segments(x.shape, (2, 3))
  orders = torch_permutations(6, 3)
  sampler = captum_attr.ShapleyValueSampling(reference)
  sampler.permutation_generator = lambda count, samples: iter(orders.tolist())
  ref = sampler.attribute(_nchw(x), baselines=_nchw(baseline), target=TARGETS,
                          feature_mask=_mask(segments), n_samples=3, perturbations_per_eval=5)
  close(ours(shapley_value_sampling, model, variables, x, target=np.array(TARGETS),
             segments=segments, baseline=baseline, permutations=orders, chunk=5), _nhwc(ref))


@pytest.fixture(scope="module")
def eight_superpixels(tiny):
  """The tiny net, its 2 images at 16 px, a 2 × 4 grid of segments and their exact Shapley
  values for class 1."""
  model, variables, x = tiny
  x = np.asarray(x)[:, ::2, ::2]
  segments = grid_segments(x.shape, (2, 4))
  return model, variables, x, segments, exact_shapley(model, variables, x, segments, 1)


@pytest.mark.slow
def test_exact_shapley_values_are_efficient(eight_superpixels):
  """The brute-force reference itself: values sum to v(all) − v(none)."""
  model, variables, x, _, phi = eight_superpixels
  ends = np.asarray(jax.jit(model.apply)(variables, np.concatenate([x, np.zeros_like(x)])))
  ends = ends[:, 1]
  np.testing.assert_allclose(phi.sum(1), ends[:2] - ends[2:], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_shapley_value_sampling_converges_to_exact_values_like_one_over_root_n(
    eight_superpixels):
  """16× the permutations: the RMS error against the brute-force values shrinks ~4×
  (an unbiased mean of independent orders; 12 draws of each, so the ratio is itself ±~15%)."""
  coarse, fine = (sampling_error(shapley_value_sampling, *eight_superpixels, target=1,
                                 repeats=12, samples=n, chunk=None) for n in (4, 64))
  assert 3.0 < coarse / fine < 5.3, (coarse, fine)


@pytest.fixture(scope="module")
def lite0(lite0_imagenet, lite0_inputs):
  """(reference, model, variables, crops, x, the reference's top-1 classes) on the photos."""
  reference, model, variables, _ = lite0_imagenet
  crops, x = lite0_inputs
  with torch.no_grad():
    top1 = reference(_nchw(x)).argmax(1).tolist()
  return reference, model, variables, crops, x, top1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["occlusion", "feature_ablation", "shapley_value_sampling"])
def test_real_weights_and_photos_equal_captum(lite0, close, method):
  """The real EfficientNet-Lite0 on chelsea and coffee, top-1 class (ours: target=None):
  3 × 3 windows of 112 px (stride 56), SLIC superpixels of the photos, 2 orders of a 2 × 2
  grid."""
  reference, model, variables, crops, x, top1 = lite0
  if method == "occlusion":
    ref = captum_attr.Occlusion(reference).attribute(
        _nchw(x), sliding_window_shapes=(3, 112, 112), strides=56, target=top1,
        perturbations_per_eval=9)
    got = ours(occlusion, model, variables, x, window=112, stride=56, chunk=9)
  elif method == "feature_ablation":
    segments = np.stack([segmentation.slic(c, n_segments=8, start_label=0) for c in crops])
    ref = captum_attr.FeatureAblation(reference).attribute(
        _nchw(x), target=top1, feature_mask=_mask(segments), perturbations_per_eval=16)
    got = ours(feature_ablation, model, variables, x, segments=segments, chunk=None)
  else:
    segments, orders = grid_segments(x.shape, 2), torch_permutations(4, 2)
    sampler = captum_attr.ShapleyValueSampling(reference)
    sampler.permutation_generator = lambda count, samples: iter(orders.tolist())
    ref = sampler.attribute(_nchw(x), target=top1, feature_mask=_mask(segments), n_samples=2,
                            perturbations_per_eval=6)
    got = ours(shapley_value_sampling, model, variables, x, segments=segments,
               permutations=orders, chunk=None)
  close(got, _nhwc(ref))


@pytest.mark.slow
def test_chunks_telescoping_and_a_single_segment_on_the_tiny_net(eight_superpixels):
  """Without Captum: the steps of every order telescope, so each image's sampled Shapley
  values sum to v(all) − v(none) exactly; one segment ablated is v(x) − v(baseline); chunks
  of 3 (uneven) give what one pass gives."""
  model, variables, x, segments, _ = eight_superpixels
  scores = np.asarray(jax.jit(model.apply)(variables, np.concatenate([x, np.full_like(x, 0.5)])))
  gap = scores[:2, 1] - scores[2:, 1]
  run = jax.jit(lambda z, chunk: shapley_value_sampling(
      model, variables, z, 1, segments, 0.5, samples=3, key=jax.random.key(4), chunk=chunk),
                static_argnums=1)
  one_pass, chunked = run(x, None), run(x, 3)
  np.testing.assert_allclose(chunked, one_pass, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(per_segment(np.asarray(one_pass), segments).sum(1), gap,
                             rtol=1e-5, atol=1e-6)
  whole = ours(feature_ablation, model, variables, x, target=1,
               segments=np.zeros(x.shape[:3], np.int32), baseline=0.5)
  np.testing.assert_allclose(whole[:, 5, 7, 2], gap, rtol=1e-5, atol=1e-6)


def test_grid_segments_and_window_cover():
  ids = grid_segments((2, 5, 7), (2, 3))  # uneven: rows 3 + 2, columns 3 + 2 + 2
  assert ids.shape == (2, 5, 7) and ids.dtype == np.int32
  np.testing.assert_array_equal(ids[1, :, 0], [0, 0, 0, 3, 3])
  np.testing.assert_array_equal(ids[0, 4], [3, 3, 3, 4, 4, 5, 5])
  cover = window_cover(64, 24, 16)  # Captum: ceil((64 − 24) / 16) + 1 = 4 windows, last cut
  assert cover.shape == (4, 64)
  np.testing.assert_array_equal(cover.sum(1), [24, 24, 24, 16])
  assert cover.any(0).all()


@pytest.mark.parametrize("call,message", [
    (lambda m, v, x: occlusion(m, v, x, window=40), "exceeds"),
    (lambda m, v, x: occlusion(m, v, x, window=8, stride=9), "skip pixels"),
    (lambda m, v, x: feature_ablation(m, v, x, segments=np.zeros((2, 8, 8), np.int32)),
     "shape"),
    (lambda m, v, x: feature_ablation(m, v, x, segments=np.zeros((2, 32, 32))), "integer"),
    (lambda m, v, x: jax.jit(lambda s: feature_ablation(m, v, x, segments=s))(
        np.zeros((2, 32, 32), np.int32)), "num_segments"),
    (lambda m, v, x: shapley_value_sampling(m, v, x, segments=grid_segments(x.shape, 2),
                                            permutations=[[0, 1, 2]]), "permutations"),
])
def test_bad_arguments_are_named(tiny, call, message):
  model, variables, x = tiny
  with pytest.raises(ValueError, match=message):
    call(model, variables, x)

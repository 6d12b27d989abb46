"""KernelSHAP and LIME equal Captum's KernelShap and Lime on converted torchvision models and
the real EfficientNet-Lite0, given the same interpretable samples (fed to Captum through its
`perturb_func` hook, one generator per example as Captum fits each example alone), inputs,
targets, baselines and masks; KernelSHAP converges to the exact Shapley values like 1/√n.

Ours run jitted (see test_perturbation.py).
"""
import jax
import numpy as np
import pytest

from cnnviz_jax.explain.perturbation import grid_segments
from cnnviz_jax.explain.surrogate import kernel_shap, kernel_shap_samples, lime
from shapley_exact import exact_shapley, sampling_error
from test_perturbation import (TARGETS, _inputs, _mask, _nchw, _nhwc, ours, segmentation,
                               superpixels)

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
from captum._utils.models.linear_model import (SkLearnLasso,  # noqa: E402
                                                SkLearnLinearRegression)


def injected(samples: np.ndarray):
  """A Captum perturb_func yielding samples[b] (n, F) for the b-th example it is called on."""
  per_example = iter(samples.astype(np.int64))

  def generator(_inputs, **_kwargs):
    for row in next(per_example):
      yield torch.from_numpy(row[None])

  return generator


def bernoulli_samples(shape, seed: int = 0) -> np.ndarray:
  return np.random.RandomState(seed).rand(*shape) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_kernel_shap_equals_captum_with_the_same_samples(torch_pair, close, arch):
  reference, model, variables = torch_pair(arch)
  x, baseline = _inputs(arch)
  segments = superpixels(x, 8)
  samples = np.asarray(kernel_shap_samples(jax.random.key(0), (2, 24, segments.max() + 1)))
  explainer = captum_attr.KernelShap(reference)
  explainer.perturb_func = injected(samples)
  ref = explainer.attribute(_nchw(x), baselines=_nchw(baseline), target=TARGETS,
                            feature_mask=_mask(segments), n_samples=24,
                            perturbations_per_eval=8)
  close(ours(kernel_shap, model, variables, x, target=np.array(TARGETS), segments=segments,
             baseline=baseline, interpretable_samples=samples, chunk=8), _nhwc(ref))


@pytest.mark.slow
@pytest.mark.parametrize("arch,alpha", [("resnet50", 0.01), ("vgg11", 1e-4), ("vgg11", 0.0)])
def test_lime_equals_captum_with_the_same_samples(torch_pair, close, arch, alpha):
  """Captum's Lime: cosine kernel of width 1 and sklearn's Lasso(alpha) (its default alpha
  0.01 on ResNet-50; on VGG-11, whose random-weight scores move by ~0.01, alpha 0.01 zeroes
  every coefficient, so 1e-4), or alpha=0: its Lime with SkLearnLinearRegression.

  sklearn's Lasso stops at a duality gap of tol · ||y||² (tol=1e-4); ours solves to the
  optimum. With its Lasso run to tol=1e-9 they agree within 1e-4 (ResNet-50: 4e-5, its
  float32 forwards); with the Lasso as shipped, within 1e-3 (its early stop alone: 9e-5)."""
  reference, model, variables = torch_pair(arch)
  x, baseline = _inputs(arch)
  segments = grid_segments(x.shape, 3)
  samples = bernoulli_samples((2, 24, 9))
  fits = ({1e-4: SkLearnLinearRegression()} if alpha == 0 else
          {1e-4: SkLearnLasso(alpha=alpha, tol=1e-9, max_iter=100_000),
           1e-3: SkLearnLasso(alpha=alpha)})
  attributions = ours(lime, model, variables, x, target=np.array(TARGETS), segments=segments,
                      baseline=baseline, interpretable_samples=samples, alpha=alpha, chunk=8)
  assert np.all(np.count_nonzero(attributions[:, ::11, ::11, 0], axis=(1, 2)) >= 4)
  for tol, fit in fits.items():
    ref = captum_attr.Lime(reference, fit, perturb_func=injected(samples)).attribute(
        _nchw(x), baselines=_nchw(baseline), target=TARGETS, feature_mask=_mask(segments),
        n_samples=24, perturbations_per_eval=8)
    close(attributions, _nhwc(ref), tol=tol)


@pytest.fixture(scope="module")
def eight_superpixels(tiny):
  """The tiny net, its 2 images at 16 px, a 2 × 4 grid of segments and their exact Shapley
  values for class 1."""
  model, variables, x = tiny
  x = np.asarray(x)[:, ::2, ::2]
  segments = grid_segments(x.shape, (2, 4))
  return model, variables, x, segments, exact_shapley(model, variables, x, segments, 1)


@pytest.mark.slow
def test_kernel_shap_converges_to_exact_shapley_values_like_one_over_root_n(eight_superpixels):
  """16× the samples: the RMS error against the brute-force values shrinks ~4× (a weighted
  regression on independent draws: its error is ~1/√n once n well exceeds the F + 1 = 9
  unknowns; 12 draws of each, so the ratio is itself ±~15%)."""
  coarse, fine = (sampling_error(kernel_shap, *eight_superpixels, target=1, repeats=12,
                                 samples=n, chunk=256) for n in (64, 1024))
  assert 3.0 < coarse / fine < 5.3, (coarse, fine)


@pytest.fixture(scope="module")
def lite0(lite0_imagenet, lite0_inputs):
  """(reference, model, variables, x, top-1 classes, SLIC superpixels of the photos)."""
  reference, model, variables, _ = lite0_imagenet
  crops, x = lite0_inputs
  with torch.no_grad():
    top1 = reference(_nchw(x)).argmax(1).tolist()
  segments = np.stack([segmentation.slic(c, n_segments=8, start_label=0) for c in crops])
  return reference, model, variables, x, top1, segments


@pytest.mark.slow
@pytest.mark.parametrize("method", ["kernel_shap", "lime"])
def test_real_weights_and_photos_equal_captum(lite0, close, method):
  """The real EfficientNet-Lite0 on chelsea and coffee, top-1 class (ours: target=None),
  16 samples on SLIC superpixels of the photos; Lime with Captum's defaults (its Lasso
  stops early: within 1e-3, see test_lime_equals_captum_with_the_same_samples)."""
  reference, model, variables, x, top1, segments = lite0
  count = segments.max() + 1
  if method == "kernel_shap":
    samples = np.asarray(kernel_shap_samples(jax.random.key(1), (2, 16, count)))
    explainer, fn, tol = captum_attr.KernelShap(reference), kernel_shap, 1e-4
    explainer.perturb_func = injected(samples)
  else:
    samples = bernoulli_samples((2, 16, count), seed=1)
    explainer, fn, tol = captum_attr.Lime(reference, perturb_func=injected(samples)), lime, 1e-3
  ref = explainer.attribute(_nchw(x), target=top1, feature_mask=_mask(segments), n_samples=16,
                            perturbations_per_eval=16)
  close(ours(fn, model, variables, x, segments=segments, interpretable_samples=samples,
             chunk=16), _nhwc(ref), tol=tol)

"""infidelity and sensitivity_max equal Captum 0.9's (captum.metrics) on converted torchvision
models, with the same draws: Captum's `perturb_func` returns our perturbations, row for row
(its rows are image-major, `repeat_interleave`, as our (B, samples, ...) draws)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain.gradients import gradient
from cnnviz_jax.explain.robustness import gaussian_perturbation, infidelity, sensitivity_max

torch = pytest.importorskip("torch")
captum_metrics = pytest.importorskip("captum.metrics")
captum_attr = pytest.importorskip("captum.attr")

_SIZES = {"resnet18": 64, "resnet50": 64, "vgg11": 32, "vgg16": 32}
CLASSES = [3, 7]
SAMPLES = 4


def _nchw(a) -> "torch.Tensor":
  a = np.asarray(a, np.float32)
  return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))


def _pair(torch_pair, arch):
  reference, model, variables = torch_pair(arch)
  size = _SIZES[arch]
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  return reference, model, variables, x, _nchw(x)


def _rows(draws: np.ndarray) -> np.ndarray:
  """(B, S, H, W, C) -> Captum's (B·S, C, H, W) image-major rows."""
  return draws.reshape(-1, *draws.shape[2:])


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(_SIZES))
def test_infidelity_equals_captum(torch_pair, close, arch):
  """Gaussian perturbations (Captum's documented example, σ = 0.003 there; 0.1 here so the
  score changes stand well above float32 noise), attributions random, both normalizations."""
  reference, model, variables, x, x_torch = _pair(torch_pair, arch)
  rng = np.random.RandomState(2)
  attributions = rng.randn(*x.shape).astype(np.float32) * 0.01
  perturbations = (0.1 * rng.randn(2, SAMPLES, *x.shape[1:])).astype(np.float32)

  def perturb_func(inputs):
    noise = _nchw(_rows(perturbations))
    assert noise.shape == inputs.shape
    return noise, inputs - noise

  for normalize in (False, True):
    ours = infidelity(model, variables, jnp.asarray(x), jnp.asarray(attributions),
                      np.array(CLASSES), perturb=jnp.asarray(perturbations), normalize=normalize)
    with torch.no_grad():
      ref = captum_metrics.infidelity(reference, perturb_func, x_torch, _nchw(attributions),
                                      target=CLASSES, n_perturb_samples=SAMPLES,
                                      normalize=normalize)
    # 1e-3: f(x) − f(x − I) is a difference of close logits, so the two frameworks' float32
    # summation orders (~1e-6 of the logits) weigh more in it (ResNet-50: 2e-4 measured)
    close(ours, ref.numpy(), tol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_sensitivity_max_equals_captum(torch_pair, close, arch):
  """The gradient (Captum's Saliency without its absolute value) under uniform noise of radius
  0.02 (Captum's default perturbation), one class per image (Captum's Saliency needs one)."""
  reference, model, variables, x, x_torch = _pair(torch_pair, arch)
  noise = np.random.RandomState(3).uniform(-0.02, 0.02, (2, SAMPLES, *x.shape[1:]))
  noise = noise.astype(np.float32)

  def perturb_func(inputs, radius):
    assert radius == 0.02
    return inputs + _nchw(_rows(noise))

  saliency = functools.partial(captum_attr.Saliency(reference).attribute, abs=False)
  ours = sensitivity_max(model, variables, jnp.asarray(x), gradient, np.array(CLASSES),
                         noise=jnp.asarray(noise))
  ref = captum_metrics.sensitivity_max(saliency, x_torch, perturb_func,
                                       n_perturb_samples=SAMPLES, target=CLASSES)
  close(ours, ref.detach().numpy(), tol=1e-4)


def test_default_draws_are_keyed_and_explicit_draws_reproduce_them(tiny):
  """With a key, the perturbations are reproducible, and the same draws passed explicitly give
  the same value (the perturbation function's own noise: I and x − I)."""
  model, variables, x = tiny
  attributions = gradient(model, variables, x)
  key = jax.random.key(5)
  perturb = gaussian_perturbation(0.05)
  keyed = infidelity(model, variables, x, attributions, perturb=perturb, samples=3, key=key)
  draws = jax.vmap(lambda k: perturb(k, x)[0], out_axes=1)(jax.random.split(key, 3))
  np.testing.assert_allclose(infidelity(model, variables, x, attributions, perturb=draws),
                             keyed, rtol=1e-6)
  assert not np.allclose(keyed, infidelity(model, variables, x, attributions, perturb=perturb,
                                           samples=3, key=jax.random.key(6)))


def test_infidelity_is_zero_for_a_linear_model_explained_by_its_gradient(close):
  """Yeh et al.'s point of reference: for f(x) = w·x, the gradient times the perturbation is
  exactly the score change, so the infidelity vanishes whatever the perturbations."""
  import flax.linen as nn

  class Linear(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
      return nn.Dense(3)(x.reshape(x.shape[0], -1))

  model = Linear()
  x = jnp.asarray(np.random.RandomState(0).randn(2, 4, 4, 3), jnp.float32)
  variables = model.init(jax.random.key(0), x)
  value = infidelity(model, variables, x, gradient(model, variables, x, 1), 1,
                     perturb=gaussian_perturbation(0.5), samples=8)
  assert float(jnp.max(value)) < 1e-9
  # and a wrong attribution is penalized by the mean squared misprediction
  assert float(jnp.min(infidelity(model, variables, x, jnp.zeros_like(x), 1,
                                  perturb=gaussian_perturbation(0.5), samples=8))) > 1e-3


def test_sensitivity_max_chunks_and_repeated_targets_agree(tiny, close):
  """Samples explained two at a time give the batch's result, and so does each image alone:
  per-image targets follow their image's rows (image-major)."""
  model, variables, x = tiny
  noise = jax.random.uniform(jax.random.key(1), (2, 4, *x.shape[1:]), minval=-0.1, maxval=0.1)
  whole = sensitivity_max(model, variables, x, gradient, np.array([1, 3]), noise=noise)
  close(sensitivity_max(model, variables, x, gradient, np.array([1, 3]), noise=noise, chunk=2),
        whole, tol=1e-6)
  per_image = [sensitivity_max(model, variables, x[i:i + 1], gradient, c, noise=noise[i:i + 1])
               for i, c in enumerate([1, 3])]
  close(jnp.concatenate(per_image), whole, tol=1e-5)

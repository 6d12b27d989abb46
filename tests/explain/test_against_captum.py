"""Input attributions equal Captum (public API) on converted torchvision models.

Compared relative to the reference's largest magnitude (≤ 1e-4). The points are generic:
where a ReLU pre-activation or a max-pool pair sits within float rounding of a tie, the
two frameworks may legitimately take different sides (we saw it once on a noisy
ResNet input: 3% of one sample's gradient), so the inputs here are fixed.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

E = cj.explain
TARGETS = [3, 7]


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


_SIZES = {"resnet18": 128, "vgg11": 32}


def _pair(torch_pair, arch):
  reference, model, variables = torch_pair(arch)
  x = np.random.RandomState(1).randn(2, _SIZES[arch], _SIZES[arch], 3).astype(np.float32)
  return reference, model, variables, x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _ours(fn, model, variables, x, **kwargs):
  return jax.jit(functools.partial(fn, model, target=np.array(TARGETS), **kwargs))(variables, x)


_METHODS = {
    "guided_backprop": (E.guided_backprop, "GuidedBackprop", {}),
    "deconvnet": (E.deconvnet, "Deconvolution", {}),
    "gradient": (E.gradient, "Saliency", {"abs": False}),  # Captum's Saliency: |grad| by default
    "gradient_x_input": (E.gradient_x_input, "InputXGradient", {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("arch,method", [("resnet18", m) for m in _METHODS] + [
    ("vgg11", "guided_backprop"), ("vgg11", "deconvnet")])  # + VGG's classifier ReLUs
def test_modified_and_plain_gradients_equal_captum(torch_pair, close, arch, method):
  reference, model, variables, x, x_torch = _pair(torch_pair, arch)
  ours, theirs, kwargs = _METHODS[method]
  ref = getattr(captum_attr, theirs)(reference).attribute(x_torch.clone(), target=TARGETS, **kwargs)
  close(_ours(ours, model, variables, x), _nhwc(ref))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_right", "gausslegendre"])
def test_integrated_gradients_equal_captum(torch_pair, close, method):
  """VGG-11: ResNet's stem max-pool sees near-ties on the dim inputs near the baseline.

  Captum's trapezoid weighs its n nodes 1/n (sum (n−1)/n, completeness off by 1/n); ours
  weigh them 1/(n−1), so ours × (n−1)/n equals Captum's (see `ig_rule`).
  """
  reference, model, variables = torch_pair("vgg11")
  x = np.random.RandomState(1).randn(2, 32, 32, 3).astype(np.float32)
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  baseline = 0.1 * np.random.RandomState(2).randn(*x.shape).astype(np.float32)
  steps = 8
  ref = captum_attr.IntegratedGradients(reference).attribute(
      x_torch.clone(), torch.from_numpy(baseline.transpose(0, 3, 1, 2).copy()),
      target=TARGETS, n_steps=steps, method=method)
  chunk = 5 if method == "riemann_trapezoid" else None  # 5: uneven chunks of the 16 rows
  ours = _ours(E.integrated_gradients, model, variables, x, baseline=baseline, steps=steps,
               method=method, chunk=chunk)
  close(ours * ((steps - 1) / steps if method == "riemann_trapezoid" else 1), _nhwc(ref))


@pytest.mark.slow
def test_integrated_gradients_zero_baseline_resnet(torch_pair, close):
  reference, model, variables, x, x_torch = _pair(torch_pair, "resnet18")
  ref = captum_attr.IntegratedGradients(reference).attribute(
      x_torch.clone(), target=TARGETS, n_steps=4, method="riemann_right")
  close(_ours(E.integrated_gradients, model, variables, x, steps=4, method="riemann_right"),
        _nhwc(ref))


@pytest.mark.slow
def test_smoothgrad_equals_captum_noise_tunnel_with_the_same_noise(torch_pair, close):
  """NoiseTunnel(Saliency) draws torch.normal(0, std) of shape (B·n, C, H, W), image-major;
  we draw the same numbers from the same seed and pass them as `noise`."""
  reference, model, variables = torch_pair("vgg11")
  x = np.random.RandomState(3).randn(2, 32, 32, 3).astype(np.float32)
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  samples, stdev = 4, 0.3
  torch.manual_seed(5)
  noise = torch.normal(0, torch.tensor(stdev).repeat((2 * samples, 3, 32, 32)))
  torch.manual_seed(5)
  ref = captum_attr.NoiseTunnel(captum_attr.Saliency(reference)).attribute(
      x_torch.clone(), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
      target=TARGETS, abs=False)
  noise = jnp.asarray(_nhwc(noise).reshape(2, samples, 32, 32, 3))
  close(_ours(E.smoothgrad, model, variables, x, noise=noise, chunk=4), _nhwc(ref))


@pytest.mark.slow
def test_guided_backprop_several_classes_from_one_forward(torch_pair, close):
  reference, model, variables, x, x_torch = _pair(torch_pair, "resnet18")
  ours = jax.jit(functools.partial(E.guided_backprop, model, target=[1, 6]))(variables, x)
  assert ours.shape == (2, 2, *x.shape[1:])
  for k, cls in enumerate([1, 6]):
    ref = captum_attr.GuidedBackprop(reference).attribute(x_torch.clone(), target=cls)
    close(ours[:, k], _nhwc(ref))

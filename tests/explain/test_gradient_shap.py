"""GradientShap equals Captum's with the same draws: Captum draws the baselines' indices with
np.random.choice, then the noise with torch.normal, then the points on the path with
np.random.uniform; seeded alike, we draw the same numbers and pass them."""
import numpy as np
import pytest

from cnnviz_jax.explain.gradient_shap import gradient_shap

TARGETS = [3, 7]


def captum_draws(torch, images: int, samples: int, shape, distribution: int, stdev: float):
  """Captum GradientShap's draws for `images` inputs after np.random.seed(0),
  torch.manual_seed(0): (indices (B, S), noise (B, S, H, W, C) NHWC, alphas (B, S))."""
  np.random.seed(0)
  torch.manual_seed(0)
  indices = np.random.choice(distribution, samples * images).reshape(images, samples)
  noise = torch.normal(0, torch.tensor(stdev).repeat((images * samples, shape[2], *shape[:2])))
  alphas = np.random.uniform(0.0, 1.0, images * samples).reshape(images, samples)
  noise = noise.numpy().transpose(0, 2, 3, 1).reshape(images, samples, *shape)
  return indices, noise, alphas


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", [("vgg11", 32)])  # ResNet-18: test_neuron_rules.py
def test_gradient_shap_equals_captum_with_the_same_draws(torch_pair, close, arch, size):
  torch = pytest.importorskip("torch")
  jit_call = pytest.importorskip("captum_views").jit_call
  from captum.attr import GradientShap  # pylint: disable=import-outside-toplevel
  reference, model, variables = torch_pair(arch)
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  baselines = 0.3 * np.random.RandomState(2).randn(4, size, size, 3).astype(np.float32)
  samples, stdev = 3, 0.2
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
  np.random.seed(0)
  torch.manual_seed(0)
  ref = GradientShap(reference).attribute(nchw(x), nchw(baselines), n_samples=samples,
                                          stdevs=stdev, target=TARGETS)
  draws, noise, alphas = captum_draws(torch, 2, samples, x.shape[1:], 4, stdev)
  ours = jit_call(gradient_shap, model, variables, x, target=np.array(TARGETS),
                  baselines=baselines, draws=draws, alphas=alphas, noise=noise, chunk=4)
  close(ours, ref.detach().numpy().transpose(0, 2, 3, 1))

"""Neuron targets (`targets.neuron(layer, channel[, (y, x)])`) of the rule-based methods
against Captum's Neuron* classes on ResNet-18's 'layer3' (torchvision's `layer3`):
NeuronGuidedBackprop, NeuronDeconvolution, NeuronDeepLift, NeuronGradientShap. A channel
summed over space is Captum's callable neuron_selector; a position is its (c, y, x) index."""
import numpy as np
import pytest

from cnnviz_jax.explain.deep_lift import deep_lift
from cnnviz_jax.explain.gradient_shap import gradient_shap
from cnnviz_jax.explain.guided import deconvnet, guided_backprop
from cnnviz_jax.explain.targets import neuron

LAYER, CHANNEL, POSITION = "layer3", 5, (1, 2)  # layer3: (B, 4, 4, 256) at 64 px


def _selector(position):
  if position is None:
    return lambda out: out[:, CHANNEL].sum(dim=(1, 2))
  return (CHANNEL, *position)


@pytest.fixture(scope="module")
def case(torch_pair):
  torch = pytest.importorskip("torch")
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(1).randn(2, 64, 64, 3).astype(np.float32)
  base = 0.3 * np.random.RandomState(2).randn(2, 64, 64, 3).astype(np.float32)
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
  return torch, reference, model, variables, x, base, nchw


def jit_call(*args, **kwargs):
  return pytest.importorskip("captum_views").jit_call(*args, **kwargs)


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.slow
@pytest.mark.parametrize("method,position", [("guided_backprop", None),
                                             ("deconvnet", POSITION)])
def test_neuron_guided_backprop_and_deconvolution_equal_captum(case, close, method, position):
  from captum import attr  # pylint: disable=import-outside-toplevel
  _, reference, model, variables, x, _, nchw = case
  ours, theirs = {"guided_backprop": (guided_backprop, attr.NeuronGuidedBackprop),
                  "deconvnet": (deconvnet, attr.NeuronDeconvolution)}[method]
  ref = theirs(reference, reference.layer3).attribute(nchw(x), _selector(position))
  close(jit_call(ours, model, variables, x, target=neuron(LAYER, CHANNEL, position)),
        _nhwc(ref))


@pytest.mark.slow
@pytest.mark.parametrize("position", [POSITION])
def test_neuron_deep_lift_equals_captum(case, close, position, monkeypatch):
  from captum.attr import NeuronDeepLift  # pylint: disable=import-outside-toplevel
  captum_views = pytest.importorskip("captum_views")
  captum_views.summed_max_pool_rule(monkeypatch)
  _, reference, model, variables, x, base, nchw = case
  peer = captum_views.own_modules(reference, clone_before_pools=True)
  ref = NeuronDeepLift(peer, peer.layer3).attribute(nchw(x), _selector(position), nchw(base))
  close(jit_call(deep_lift, model, variables, x, target=neuron(LAYER, CHANNEL, position),
                 baseline=base), _nhwc(ref))


@pytest.mark.slow
def test_neuron_gradient_shap_equals_captum_with_the_same_draws(case, close):
  from captum.attr import NeuronGradientShap  # pylint: disable=import-outside-toplevel
  from test_gradient_shap import captum_draws  # pylint: disable=import-outside-toplevel
  torch, reference, model, variables, x, base, nchw = case
  samples, stdev = 3, 0.2
  np.random.seed(0)
  torch.manual_seed(0)
  ref = NeuronGradientShap(reference, reference.layer3).attribute(
      nchw(x), _selector(None), nchw(base), n_samples=samples, stdevs=stdev)
  draws, noise, alphas = captum_draws(torch, 2, samples, x.shape[1:], 2, stdev)
  ours = jit_call(gradient_shap, model, variables, x, target=neuron(LAYER, CHANNEL),
                  baselines=base, draws=draws, alphas=alphas, noise=noise)
  close(ours, _nhwc(ref))

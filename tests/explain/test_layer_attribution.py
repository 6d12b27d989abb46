"""Layer attributions, neuron targets and NoiseTunnel's kinds equal Captum on the same weights.

Captum runs on converted random-weight torchvision models (and the real EfficientNet-Lite0 on
photographs) with the same inputs, targets, baselines and noise; compared relative to the
reference's largest magnitude (1e-4). Baselines are small random images, not zeros: near a
zero baseline ResNet's stem max-pool sees exact ties (test_against_captum.py). The inputs are
fixed generic points: where a ReLU's input lies within float32 rounding of 0 the frameworks
may take different sides (met once in a noisy ResNet-18 sample, once in a ResNet-50 IG step:
0.7% and 1.8% of the map's maximum; both frameworks' float32 activations are as far from
float64's, 1e-6, and in float64 the two gradients agree to 1e-15). Completeness is checked
on the tiny net against the model's own output difference.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain import gradients
from cnnviz_jax.explain.layer_attribution import (internal_influence, layer_conductance,
                                                  layer_gradient_x_activation,
                                                  layer_integrated_gradients)
from cnnviz_jax.explain.targets import neuron

TARGETS = np.array([3, 7])
_SIZES = {"resnet18": 64, "resnet50": 64, "vgg11": 32, "vgg16": 32}
# our tap -> the torchvision module whose output it is (VGG: the blocks' max-pools)
_LAYERS = {"resnet18": "layer3", "resnet50": "layer4", "vgg11": "block3", "vgg16": "block4"}


def _torch_layer(reference, arch):
  if arch.startswith("resnet"):
    return getattr(reference, _LAYERS[arch])
  pools = [m for m in reference.features if m.__class__.__name__ == "MaxPool2d"]
  return pools[int(_LAYERS[arch][-1]) - 1]


def _nhwc(t) -> np.ndarray:
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _nchw(a):
  import torch  # pylint: disable=import-outside-toplevel
  return torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2)))


def _inputs(arch, seed=1):
  size = _SIZES[arch]
  x = np.random.RandomState(seed).randn(2, size, size, 3).astype(np.float32)
  return x, 0.1 * np.random.RandomState(seed + 1).randn(*x.shape).astype(np.float32)


@pytest.fixture(scope="module")
def captum_attr():
  pytest.importorskip("torch")
  return pytest.importorskip("captum.attr")


# ours, Captum's class, arch, the rule (Captum's default: Gauss–Legendre)
_STEPS = 4
_CASES = {  # each arch once; several targets on VGG-11 below
    "gxa-resnet18": (layer_gradient_x_activation, "LayerGradientXActivation", "resnet18", {}),
    # Captum's trapezoid weights sum to (n−1)/n, ours to 1 (gradients.ig_rule)
    "influence-vgg11-trapezoid": (internal_influence, "InternalInfluence", "vgg11",
                                  {"method": "riemann_trapezoid"}),
    "conductance-resnet50": (layer_conductance, "LayerConductance", "resnet50", {}),
    "lig-vgg16": (layer_integrated_gradients, "LayerIntegratedGradients", "vgg16", {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(_CASES))
def test_layer_attributions_equal_captum(torch_pair, close, captum_attr, case):
  ours, theirs, arch, options = _CASES[case]
  reference, model, variables = torch_pair(arch)
  x, baseline = _inputs(arch)
  path = {} if ours is layer_gradient_x_activation else {"baseline": baseline, "steps": _STEPS}
  kwargs = {} if not path else {"baselines": _nchw(baseline), "n_steps": _STEPS,
                                "method": options.get("method", "gausslegendre")}
  ref = getattr(captum_attr, theirs)(reference, _torch_layer(reference, arch)).attribute(
      _nchw(x), target=TARGETS.tolist(), **kwargs)
  got = ours(model, variables, jnp.asarray(x), _LAYERS[arch], TARGETS, **path, **options)
  scale = (_STEPS - 1) / _STEPS if (ours is internal_influence and
                                    options.get("method") == "riemann_trapezoid") else 1
  close(np.asarray(got) * scale, _nhwc(ref))


@pytest.mark.slow
def test_several_targets_from_one_call_equal_captum_per_class(torch_pair, close, captum_attr):
  reference, model, variables = torch_pair("vgg11")
  x, baseline = _inputs("vgg11", seed=4)
  got = layer_conductance(model, variables, jnp.asarray(x), "block3", [1, 6], steps=3,
                          baseline=baseline, method="riemann_trapezoid")
  assert got.shape == (2, 2, 4, 4, 256)  # block3 at 32 px, two targets
  conductance = captum_attr.LayerConductance(reference, _torch_layer(reference, "vgg11"))
  for k, cls in enumerate([1, 6]):
    close(got[:, k], _nhwc(conductance.attribute(_nchw(x), _nchw(baseline), target=cls,
                                                 n_steps=3, method="riemann_trapezoid")))


def _channel_sum(channel):
  """Captum's neuron_selector for a whole channel: the channel summed over space, per image."""
  if np.ndim(channel) == 0:
    return lambda out: out[:, int(channel)].sum((1, 2))
  index = np.arange(len(channel))
  return lambda out: out[index, np.asarray(channel)].sum((1, 2))


@pytest.mark.slow
@pytest.mark.parametrize("arch,channel,position", [("resnet18", np.array([5, 200]), None),
                                                   ("vgg11", 9, (1, 2))])
def test_neuron_gradient_and_input_x_gradient_equal_captum(torch_pair, close, captum_attr, arch,
                                                           channel, position):
  """NeuronGradient; gradient × input has no Neuron class in Captum: its gradient times x."""
  reference, model, variables = torch_pair(arch)
  x, _ = _inputs(arch)
  selector = _channel_sum(channel) if position is None else (channel, *position)
  ref = _nhwc(captum_attr.NeuronGradient(reference, _torch_layer(reference, arch)).attribute(
      _nchw(x).requires_grad_(), neuron_selector=selector))
  target = neuron(_LAYERS[arch], channel, position)
  close(gradients.gradient(model, variables, jnp.asarray(x), target), ref)
  close(gradients.gradient_x_input(model, variables, jnp.asarray(x), target), ref * x)


@pytest.mark.slow
def test_neuron_integrated_gradients_equal_captum(torch_pair, close, captum_attr):
  reference, model, variables = torch_pair("vgg16")
  x, baseline = _inputs("vgg16", seed=6)
  ref = captum_attr.NeuronIntegratedGradients(reference, _torch_layer(reference, "vgg16"))
  ref = ref.attribute(_nchw(x), (11, 1, 0), _nchw(baseline), n_steps=_STEPS)
  close(gradients.integrated_gradients(model, variables, jnp.asarray(x),
                                       neuron("block4", 11, (1, 0)), baseline, steps=_STEPS,
                                       method="gausslegendre"), _nhwc(ref))


def _captum_noise(torch, shape, samples, stdev, seed):
  """NoiseTunnel's draw: torch.normal(0, stdev) of shape (B·samples, C, H, W), image-major,
  as our (B, samples, H, W, C) `noise`."""
  batch, height, width, channels = shape
  torch.manual_seed(seed)
  noise = torch.normal(0, torch.tensor(stdev).repeat((batch * samples, channels, height, width)))
  return jnp.asarray(_nhwc(noise).reshape(batch, samples, height, width, channels))


@pytest.mark.slow
@pytest.mark.parametrize("kind,nt_type,arch,neuron_target", [
    ("sq", "smoothgrad_sq", "vgg11", False), ("var", "vargrad", "vgg11", False),
    ("var", "vargrad", "resnet18", True)])
def test_smoothgrad_kinds_equal_noise_tunnel_with_the_same_noise(torch_pair, close, captum_attr,
                                                                 kind, nt_type, arch,
                                                                 neuron_target):
  """NoiseTunnel over Saliency (abs=False) for a class, over NeuronGradient for a neuron."""
  import torch  # pylint: disable=import-outside-toplevel
  reference, model, variables = torch_pair(arch)
  x, _ = _inputs(arch)
  samples, stdev, seed = 3, 0.3, 5
  noise = _captum_noise(torch, x.shape, samples, stdev, seed)
  if neuron_target:
    peer = captum_attr.NeuronGradient(reference, _torch_layer(reference, arch))
    peer_kwargs, target = {"neuron_selector": _channel_sum(5)}, neuron(_LAYERS[arch], 5)
  else:
    peer = captum_attr.Saliency(reference)
    peer_kwargs, target = {"target": TARGETS.tolist(), "abs": False}, TARGETS
  torch.manual_seed(seed)
  ref = captum_attr.NoiseTunnel(peer).attribute(_nchw(x), nt_type=nt_type, nt_samples=samples,
                                                stdevs=stdev, **peer_kwargs)
  close(gradients.smoothgrad(model, variables, jnp.asarray(x), target, noise=noise, kind=kind,
                             chunk=4), _nhwc(ref))


@pytest.mark.slow
def test_a_neuron_above_the_layer_is_a_target_of_layer_attributions(torch_pair, close,
                                                                     captum_attr):
  """Captum: LayerGradientXActivation of a forward that returns layer4's channel sums."""
  import torch  # pylint: disable=import-outside-toplevel
  reference, model, variables = torch_pair("resnet18")
  x, _ = _inputs("resnet18", seed=8)
  trunk = torch.nn.Sequential(*list(reference.children())[:-2])  # up to layer4
  ref = captum_attr.LayerGradientXActivation(lambda z: trunk(z).sum((2, 3)), reference.layer3)
  got = layer_gradient_x_activation(model, variables, jnp.asarray(x), "layer3",
                                    neuron("layer4", np.array([2, 30])))
  close(got, _nhwc(ref.attribute(_nchw(x), target=[2, 30])))


def _score_difference(model, variables, x, baseline, classes):
  """S(x) − S(x') of each image's class: what completeness promises the sums add up to."""
  rows = np.arange(len(classes))
  return np.asarray(model.apply(variables, x)[rows, classes]
                    - model.apply(variables, baseline)[rows, classes])


@pytest.mark.slow  # 200 to 500 path rows, eager
@pytest.mark.parametrize("method,steps,bound", [  # rows, steps (+ 1) × 2: in 16-row chunks
    (layer_conductance, (3, 15, 63), 0.02), (layer_integrated_gradients, (16, 64, 256), 1e-3)])
def test_sums_over_the_layer_converge_to_the_score_difference(tiny, method, steps, bound):
  """Completeness. Conductance (Dhamdhere et al.): summed over a layer it is IG's total,
  S(x) − S(x'), its left Riemann–Stieltjes sum converging at first order. Layer IG: its path
  runs from A(x') to A(x), so it sums to S(x) − S(x') as IG does. The trapezoid's nodes span
  [0, 1]; ReLU kinks make the integrands piecewise smooth, so no rule converges fast. The
  error (of max |ΔS|) at least halves per 4× steps; measured: conductance 14%, 3.5%, 1.1%;
  layer IG 1%, 0.14%, 0.018%."""
  model, variables, x = tiny
  baseline = 0.1 * jnp.asarray(np.random.RandomState(2).randn(*x.shape), jnp.float32)
  classes = np.array([1, 2])
  difference = _score_difference(model, variables, x, baseline, classes)
  errors = []
  for n in steps:
    total = method(model, variables, x, "block2", classes, n, baseline,
                   method="riemann_trapezoid", chunk=16).sum((1, 2, 3))
    errors.append(float(np.abs(total - difference).max() / np.abs(difference).max()))
  assert errors[1] < errors[0] / 2 and errors[2] < errors[1] / 2 and errors[2] < bound, errors


def test_layer_attributions_reject_a_neuron_not_above_the_layer(tiny):
  model, variables, x = tiny
  for layer in ("block2", "block1"):
    with pytest.raises(ValueError, match="must lie above the layer"):
      internal_influence(model, variables, x, "block2", neuron(layer, 0), steps=2)
  with pytest.raises(ValueError, match="one layer name"):
    layer_gradient_x_activation(model, variables, x, ["block1", "block2"])


@pytest.mark.slow
def test_layer_attributions_equal_captum_on_the_real_lite0_and_photographs(
    lite0_imagenet, lite0_inputs, close, captum_attr):
  """The last stage ('block7', the reference's `_blocks[15]`), each photograph's top-1 class,
  Captum's zero baseline and Gauss–Legendre rule. One jit for the four (one compile: eager
  runs EfficientNet's many small ops one by one, 3× slower here)."""
  import jax  # pylint: disable=import-outside-toplevel
  reference, model, variables, _ = lite0_imagenet
  x = lite0_inputs[1]
  x_torch = _nchw(x)
  top1 = reference(x_torch).argmax(1).numpy()
  ours = {internal_influence: "InternalInfluence", layer_conductance: "LayerConductance",
          layer_integrated_gradients: "LayerIntegratedGradients",
          layer_gradient_x_activation: "LayerGradientXActivation"}
  steps = lambda fn: {} if fn is layer_gradient_x_activation else {"steps": 3}  # noqa: E731
  got = jax.jit(lambda v, z: [fn(model, v, z, "block7", top1, **steps(fn)) for fn in ours])(
      variables, jnp.asarray(x))
  last_stage = reference._blocks[15]  # pylint: disable=protected-access
  for fn, result in zip(ours, got):
    peer = getattr(captum_attr, ours[fn])(reference, last_stage)
    kwargs = {"n_steps": 3} if steps(fn) else {}
    close(result, _nhwc(peer.attribute(x_torch, target=top1.tolist(), **kwargs)))

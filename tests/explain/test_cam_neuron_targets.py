"""CAMs for a neuron target (`targets.neuron`) equal pytorch-grad-cam with a target callable that
returns that neuron, read by a forward hook on the same converted torchvision ResNet-18.

pytorch-grad-cam calls each image's target with that image's model output; the callable
ignores it and returns the hooked activation of the neuron's layer (a channel summed over
space, or its value at one position), which back-propagates through the same graph.
"""
import numpy as np
import pytest

from cnnviz_jax.explain import maps
from cnnviz_jax.explain.grad_cam import grad_cam, layer_cam
from cnnviz_jax.explain.targets import neuron

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")


class _NeuronTarget:
  """pytorch-grad-cam target: the hooked layer's channel of one image (summed, or at y, x)."""

  def __init__(self, hooked: dict, image: int, channel: int, position=None):
    self.hooked, self.image, self.channel, self.position = hooked, image, channel, position

  def __call__(self, model_output):
    del model_output  # the neuron lies inside the network, not in its outputs
    unit = self.hooked["out"][self.image, self.channel]
    return unit.sum() if self.position is None else unit[self.position]


def _theirs(cls, reference, x, channels, position):
  hooked = {}
  handle = reference.layer4.register_forward_hook(
      lambda module, inputs, out: hooked.__setitem__("out", out))
  try:
    with cls(reference, [reference.layer3]) as method:
      x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
      return method(x_torch, targets=[_NeuronTarget(hooked, i, int(c), position)
                                      for i, c in enumerate(channels)])
  finally:
    handle.remove()


@pytest.mark.slow
@pytest.mark.parametrize("ours,theirs,kwargs,position", [
    (grad_cam, "GradCAM", {}, None),
    (grad_cam, "GradCAM", {}, (1, 1)),
    (layer_cam, "LayerCAM", {}, (1, 1)),
], ids=["grad_cam", "grad_cam_at_position", "layer_cam"])
def test_neuron_target_cams_equal_pytorch_grad_cam(torch_pair, close, ours, theirs, kwargs,
                                                   position):
  """ResNet-18 at 64 px: CAMs at layer3 (4×4) for a layer4 (2×2) neuron, one channel per
  image (at (1, 1) both units fire: a dead one has a zero gradient and a blank map).
  Theirs are min-max normalized and resized to the input; so are ours here. Grad-CAM's mean
  gradient and LayerCAM's elementwise one; the other CAMs share the same pull-back (measured
  too when written: Grad-CAM++ 1.0e-6, XGrad-CAM 2.0e-6)."""
  reference, model, variables = torch_pair("resnet18")
  x = np.random.RandomState(3).randn(2, 64, 64, 3).astype(np.float32)
  channels = np.array([2, 30])
  ref = _theirs(getattr(pgc, theirs), reference, x, channels, position)
  assert (ref.reshape(len(x), -1).max(axis=1) > 0.5).all()  # no blank map: not vacuous
  out = ours(model, variables, x, "layer3", neuron("layer4", channels, position), **kwargs)
  close(np.asarray(maps.normalize(maps.upsample(out, x.shape[1:3]))), ref)


def test_a_cam_neuron_target_must_lie_above_the_cam_layer(tiny):
  """At or below the CAM layer its score would ignore the layer's gradient tap."""
  model, variables, x = tiny
  for unit in ("block2", "block3_conv1"):
    with pytest.raises(ValueError, match="neuron target of a CAM must lie above the layer"):
      grad_cam(model, variables, x, "block3_conv1", neuron(unit, 0))

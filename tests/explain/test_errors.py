"""Every error path says what was wrong and what is valid."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj

E = cj.explain
VALID = "valid layers: block1_conv1, block1, block2_conv1, block2, block3_conv1, block4_conv1"


@pytest.mark.parametrize("call", [
    lambda m, v, x: E.grad_cam(m, v, x, "layer4"),
    lambda m, v, x: E.grad_cam_plus_plus(m, v, x, ["block2", "nope"]),
    lambda m, v, x: E.score_cam(m, v, x, "conv9"),
    lambda m, v, x: E.eigen_cam(m, v, x, "head"),
    lambda m, v, x: E.activations(m, v, x, ["block1", "fc"]),
    lambda m, v, x: E.guided_backprop(m, v, x, neuron=("layer4", 0, 0, 0)),
    lambda m, v, x: E.deconvnet(m, v, x, channel=("pool", 1)),
], ids=["grad_cam", "list", "score_cam", "eigen_cam", "activations", "neuron", "channel"])
def test_unknown_layers_list_the_valid_ones(tiny, call):
  model, variables, x = tiny
  with pytest.raises(ValueError, match="unknown layer") as info:
    call(model, variables, x)
  assert VALID in str(info.value)


@pytest.mark.parametrize("layer", [[], 3, ["block1", 2]])
def test_malformed_layer_arguments(tiny, layer):
  model, variables, x = tiny
  with pytest.raises(ValueError, match="layer must be a layer name or a non-empty list"):
    E.grad_cam(model, variables, x, layer)


@pytest.mark.parametrize("kwargs,match", [
    ({"neuron": ("block2", 0, 0, 0), "channel": ("block2", 0)}, "either neuron"),
    ({"neuron": ("block2", 0, 0)}, r"neuron must be \(layer, y, x, channel\)"),
    ({"channel": (0, "block2")}, "channel \\(layer, channel\\)"),
    ({"neuron": ("block2", 0, 0, 0), "target": 1}, "exclusive"),
])
def test_unit_targets_are_checked(tiny, kwargs, match):
  model, variables, x = tiny
  with pytest.raises(ValueError, match=match):
    E.guided_backprop(model, variables, x, **kwargs)


def test_guided_backprop_needs_an_act_attribute():
  class NoAct(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      return nn.Dense(2)(jnp.mean(nn.relu(nn.Conv(4, (3, 3))(x)), axis=(1, 2)))

  x = jnp.zeros((1, 8, 8, 3))
  variables = cj.models.initialize(NoAct(), jax.random.key(0), x)
  with pytest.raises(ValueError, match="no `act` attribute"):
    E.guided_backprop(NoAct(), variables, x)

  class ClassLevelAct(NoAct):  # an attribute that is not a field: clone cannot replace it
    act = nn.relu

  with pytest.raises(ValueError, match="no `act` attribute"):
    E.guided_backprop(ClassLevelAct(), variables, x)


def test_input_attribution_arguments(tiny):
  model, variables, x = tiny
  with pytest.raises(ValueError, match=r"noise must have shape \(B, samples, H, W, C\)"):
    E.smoothgrad(model, variables, x, noise=jnp.zeros((2, 4, 16, 16, 3)))
  with pytest.raises(ValueError, match="unknown integration method 'simpson'"):
    E.integrated_gradients(model, variables, x, method="simpson")
  with pytest.raises(ValueError, match="steps >= 2"):
    E.integrated_gradients(model, variables, x, steps=1)
  with pytest.raises(ValueError, match="unknown baseline 'black'"):
    E.integrated_gradients(model, variables, x, baseline="black")


def test_filters_errors(tiny):
  model, variables, _ = tiny
  with pytest.raises(ValueError, match="0 convolutions under 'block9', need exactly one; "
                     "convolutions: block1_conv1/conv, block2_conv1/conv"):
    E.filters(model, variables, layer="block9")
  with pytest.raises(ValueError, match="no 2-D convolution"):
    E.filters(model, {"params": {"dense": {"kernel": np.zeros((3, 4))}}})

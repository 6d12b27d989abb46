"""layer_names and activations at named layers, in one forward pass."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj


@pytest.fixture(scope="module")
def resnet():
  model = cj.models.create("resnet18", num_classes=4)
  x = jnp.asarray(np.random.RandomState(0).randn(2, 32, 32, 3), jnp.float32)
  return model, cj.models.initialize(model, jax.random.key(0), x), x


def test_resnet_layer_names_in_forward_order(resnet):
  model, variables, _ = resnet
  assert cj.models.layer_names(model, variables) == ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_vgg_layer_names_one_per_conv_and_per_block():
  model = cj.models.create("vgg16")
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 32, 32, 3)))
  names = cj.models.layer_names(model, variables)
  assert names[:3] == ["block1_conv1", "block1_conv2", "block1"]
  assert names[-4:] == ["block5_conv1", "block5_conv2", "block5_conv3", "block5"]
  assert len(names) == 13 + 5


def test_taps_equal_running_the_network_up_to_the_layer(resnet):
  model, variables, x = resnet
  logits, taps = cj.models.apply_with_taps(model, variables, x, ["stem", "layer2"])
  np.testing.assert_allclose(logits, model.apply(variables, x), atol=1e-6)
  # an independent forward of the stem alone, from the same parameters
  p, s = variables["params"]["stem"], variables["batch_stats"]["stem"]
  y = jax.lax.conv_general_dilated(x, p["conv1"]["kernel"], (2, 2), ((3, 3), (3, 3)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y = (y - s["bn1"]["mean"]) / jnp.sqrt(s["bn1"]["var"] + 1e-5) * p["bn1"]["scale"] + p["bn1"]["bias"]
  y = jax.lax.reduce_window(jax.nn.relu(y), -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                            ((0, 0), (1, 1), (1, 1), (0, 0)))
  np.testing.assert_allclose(taps["stem"], y, atol=1e-5)
  assert taps["layer2"].shape == (2, 4, 4, 128)


def test_delta_gradient_is_the_gradient_with_respect_to_the_activation(resnet):
  """d logit / d delta at a layer == finite differences of the activation perturbation."""
  model, variables, x = resnet
  _, taps = cj.models.apply_with_taps(model, variables, x, ["layer3"])
  zero = jnp.zeros_like(taps["layer3"])

  def score(delta):
    logits, _ = cj.models.apply_with_taps(model, variables, x, (), {"layer3": delta})
    return logits[:, 1].sum()

  grad = jax.grad(score)(zero)
  direction = jnp.asarray(np.random.RandomState(1).randn(*zero.shape), jnp.float32)
  eps = 1e-3  # small enough to stay on one side of most ReLU kinks
  numeric = (score(eps * direction) - score(-eps * direction)) / (2 * eps)
  np.testing.assert_allclose(jnp.vdot(grad, direction), numeric, rtol=2e-2)


def test_unknown_layer_lists_the_valid_ones(resnet):
  model, variables, x = resnet
  with pytest.raises(ValueError, match=r"unknown layer\(s\) \['layer5'\]; valid layers: stem, "
                                       r"layer1, layer2, layer3, layer4"):
    cj.models.apply_with_taps(model, variables, x, ["layer5"])
  with pytest.raises(ValueError, match=r"valid layers: stem"):
    cj.models.check_layers(model, variables, x, ["conv1"])


def test_taps_work_under_jit(resnet):
  model, variables, x = resnet
  fn = jax.jit(lambda v, x: cj.models.apply_with_taps(model, v, x, ["layer4"])[1]["layer4"])
  assert fn(variables, x).shape == (2, 1, 1, 512)

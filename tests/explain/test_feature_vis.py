"""Activation maximization (Olah et al. 2017): far above dataset values, deterministic."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.data import shapes_render
from cnnviz_jax.explain.feature_vis import activation_maximization

LAYER, CHANNELS = "block4_conv1", list(range(8))


@pytest.fixture(scope="module")
def net():
  model = cj.models.create("small_cnn_bn", num_classes=5)
  images, _, _ = shapes_render.render(0, 512, 32)
  x = jnp.asarray(images, jnp.float32) / 255.0  # the model's input is the [0, 1] image here
  variables = cj.models.initialize(model, jax.random.key(0), x[:1])
  acts = cj.models.apply_with_taps(model, variables, x, [LAYER])[1][LAYER][..., :len(CHANNELS)]
  return model, variables, acts


@pytest.fixture(scope="module")
def visualized(net):
  model, variables, _ = net
  return activation_maximization(model, variables, LAYER, CHANNELS, steps=128,
                                 learning_rate=0.2, seed=0)


@pytest.mark.slow
def test_raises_each_channel_far_above_the_dataset(net, visualized):
  _, _, acts = net
  dataset_mean = acts.mean((1, 2))  # (N, C) the objective on each dataset image
  ratio = visualized.objective / dataset_mean.max(0)
  print(f"\noptimized / best of 512 dataset images: {np.round(np.asarray(ratio), 1)}")
  assert visualized.images.shape == (8, 32, 32, 3)
  assert float(visualized.images.min()) >= 0.0 and float(visualized.images.max()) <= 1.0
  # an untrained net whose input is bounded to [0, 1]: 2-4x the best image, every channel
  assert np.all(ratio > 2.0) and float(jnp.median(ratio)) > 2.5
  assert np.all(visualized.history[-1] > visualized.history[0])


@pytest.mark.slow
def test_deterministic_for_a_seed(net, visualized):
  model, variables, _ = net
  again = activation_maximization(model, variables, LAYER, CHANNELS, steps=128,
                                  learning_rate=0.2, seed=0)
  np.testing.assert_array_equal(again.images, visualized.images)
  other = activation_maximization(model, variables, LAYER, CHANNELS[:2], steps=8, seed=1)
  assert not np.allclose(other.images, visualized.images[:2])


@pytest.mark.slow
def test_single_unit_and_pixel_parametrization(net):
  model, variables, acts = net
  unit = activation_maximization(model, variables, LAYER, [0, 2], unit=(4, 4), steps=64,
                                 learning_rate=0.2, parametrization="pixel")
  assert np.all(unit.objective > 2 * acts[:, 4, 4, np.array([0, 2])].max(0))


def test_errors_list_valid_choices(net):
  model, variables, _ = net
  with pytest.raises(ValueError, match="valid: fourier, pixel"):
    activation_maximization(model, variables, LAYER, 0, parametrization="cppn")
  with pytest.raises(ValueError, match="valid layers: block1_conv1"):
    activation_maximization(model, variables, "nope", 0)
  with pytest.raises(ValueError, match=r"channels must be in \[0, 96\)"):
    activation_maximization(model, variables, LAYER, 96)

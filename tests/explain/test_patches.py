"""Max-activating patches (Zeiler & Fergus 2014, seed 004): the right units, the right pixels."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.data import shapes_render
from cnnviz_jax.explain.patches import max_activating_patches
from cnnviz_jax.explain.receptive_field import receptive_field


@pytest.fixture(scope="module")
def data():
  model = cj.models.create("small_cnn_bn", num_classes=5)
  images, _, _ = shapes_render.render(0, 300, 32)
  x = images.astype(np.float32) / 255.0
  return model, cj.models.initialize(model, jax.random.key(0), x[:1]), x


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["block2", "block4_conv1"])
def test_top_k_over_the_dataset_and_patches_under_the_receptive_field(data, layer):
  model, variables, x = data
  channels = [0, 3, 7]
  # batches of 128 with a padded last one: the running top-k must equal the global one
  result = max_activating_patches(model, variables, x, layer, channels, k=6, batch_size=128)
  acts = np.asarray(cj.models.apply_with_taps(model, variables, jnp.asarray(x), [layer])[1][layer])
  field = receptive_field(model, layer)
  assert result.field == field
  for c_index, channel in enumerate(channels):
    np.testing.assert_allclose(result.activations[c_index],
                               np.sort(acts[..., channel].ravel())[::-1][:6], rtol=1e-6)
    for k in range(6):
      i, (r, c) = int(result.index[c_index, k]), np.asarray(result.position[c_index, k])
      assert acts[i, r, c, channel] == pytest.approx(float(result.activations[c_index, k]))
      # the exact receptive-field region, clipped to the image and marked
      (r0, r1), (c0, c1) = field.region((r, c))
      expected = np.zeros(field.size + (3,), np.float32)
      inside = np.zeros(field.size, bool)
      rr, cc = slice(max(r0, 0), min(r1, 32)), slice(max(c0, 0), min(c1, 32))
      dest = (slice(rr.start - r0, rr.stop - r0), slice(cc.start - c0, cc.stop - c0))
      expected[dest], inside[dest] = x[i, rr, cc], True
      np.testing.assert_array_equal(result.images[c_index, k], expected)
      np.testing.assert_array_equal(result.inside[c_index, k], inside)
      assert tuple(np.asarray(result.box[c_index, k])) == (rr.start, cc.start, rr.stop, cc.stop)


def test_border_units_are_clipped_and_marked(data):
  model, variables, x = data
  result = max_activating_patches(model, variables, x, "block4_conv1", k=20)
  field = result.field
  assert result.images.shape == (96, 20) + field.size + (3,)
  border = np.asarray((result.position == 0).any(-1))  # units in the first row or column
  assert border.any()  # zero padding favors border units in an untrained net
  assert np.all(~np.asarray(result.inside)[border].all((-1, -2)))  # part of them is outside
  np.testing.assert_array_equal(np.asarray(result.images)[~np.asarray(result.inside)], 0.0)


def test_all_channels_by_default_and_clear_errors(data):
  model, variables, x = data
  result = max_activating_patches(model, variables, x[:40], "block2", k=3, fill=-1.0)
  assert result.activations.shape == (32, 3)
  assert np.all(np.asarray(result.images)[~np.asarray(result.inside)] == -1.0)
  with pytest.raises(ValueError, match="valid layers: block1_conv1, block1"):
    max_activating_patches(model, variables, x, "block9")
  with pytest.raises(ValueError, match=r"channels must be in \[0, 32\)"):
    max_activating_patches(model, variables, x, "block2", channels=[32])

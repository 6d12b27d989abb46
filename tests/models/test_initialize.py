"""models.initialize: flax's model.init, compiled for one run; a subset of it, bit for bit."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj


@pytest.mark.slow
def test_initialize_is_model_init_and_a_subset_is_the_full_inits_values():
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 8, 8, 8))
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  key = jax.random.key(7)
  ours = flax.traverse_util.flatten_dict(cj.models.initialize(model, key, x))
  flax_init = flax.traverse_util.flatten_dict(model.init(key, jnp.zeros(x.shape, x.dtype)))
  assert ours.keys() == flax_init.keys()
  for path, value in flax_init.items():  # the same draws; compiled apart: last bits may differ
    np.testing.assert_allclose(ours[path], value, rtol=1e-6, atol=1e-7, err_msg=str(path))
    assert ours[path].dtype == value.dtype
  assert not np.allclose(ours[("params", "head", "predictions", "kernel")], 0)
  paths = [("params", "head", "predictions", "kernel"), ("params", "block2_conv1", "conv", "kernel"),
           ("batch_stats", "block1_conv1", "bn", "var")]
  subset = cj.models.initialize(model, key, x, paths)
  assert list(subset) == paths
  for path in paths:
    np.testing.assert_array_equal(subset[path], ours[path], err_msg=str(path))
  assert cj.models.initialize(model, key, x, []) == {}

"""Cascading model randomization (Adebayo et al. 2018): Spearman, layer order, batching."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import cnnviz_jax as cj
from cnnviz_jax.explain.sanity import randomization_check, randomized_variables, spearman
from cnnviz_jax.models.taps import parameter_layers


@pytest.fixture(scope="module")
def net():
  model = cj.models.create("small_cnn_bn", num_classes=4)
  x = jnp.asarray(np.random.RandomState(0).randn(3, 32, 32, 3), jnp.float32)
  return model, cj.models.initialize(model, jax.random.key(0), x), x


def test_spearman_matches_scipy_with_ties():
  rng = np.random.RandomState(0)
  a, b = rng.randint(0, 5, (4, 60)).astype(np.float32), rng.randn(4, 60).astype(np.float32)
  expected = [scipy.stats.spearmanr(u, v)[0] for u, v in zip(a, b)]
  np.testing.assert_allclose(spearman(jnp.asarray(a), jnp.asarray(b)), expected, rtol=1e-5)
  np.testing.assert_allclose(spearman(jnp.asarray(b), jnp.asarray(b)), 1.0, rtol=1e-6)
  assert float(spearman(jnp.zeros(10), jnp.arange(10.0))) == 0.0  # constant: defined as 0


def test_layers_top_down_and_cascading_replaces_exactly_those(net):
  model, variables, x = net
  assert parameter_layers(model, variables, x) == [
      "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "head"]
  layers, stacked = randomized_variables(model, variables, x, jax.random.key(1))
  assert layers[0] == "head" and layers[-1] == "block1_conv1"
  stacked, trained = jax.device_get((stacked["params"], variables["params"]))
  for i, _ in enumerate(layers):
    for j, name in enumerate(layers):
      same = all(np.array_equal(a[i], b) for a, b in zip(
          jax.tree_util.tree_leaves(stacked[name]), jax.tree_util.tree_leaves(trained[name])))
      assert same == (j > i), (i, name)  # layers[:i + 1] re-drawn, the rest kept
  _, independent = randomized_variables(model, variables, x, jax.random.key(1), "independent")
  assert not jnp.array_equal(independent["params"]["head"]["predictions"]["kernel"][0],
                             variables["params"]["head"]["predictions"]["kernel"])
  assert jnp.array_equal(independent["params"]["head"]["predictions"]["kernel"][1],
                         variables["params"]["head"]["predictions"]["kernel"])
  with pytest.raises(ValueError, match="valid modes: 'cascading', 'independent'"):
    randomized_variables(model, variables, x, jax.random.key(1), "all")


@pytest.mark.slow
def test_check_equals_explaining_each_randomized_model_alone(net):
  model, variables, x = net
  explainer = functools.partial(cj.explain.grad_cam, layer="block4_conv1")
  result = randomization_check(model, variables, x, explainer, key=jax.random.key(2), chunk=2)
  _, stacked = randomized_variables(model, variables, x, jax.random.key(2))
  target = jnp.argmax(model.apply(variables, x), -1)  # fixed: the trained model's top-1
  alone_fn = jax.jit(lambda v: explainer(model, v, x, target=target))
  for i in (0, 3):
    alone = alone_fn(jax.tree_util.tree_map(lambda a: a[i], stacked))
    np.testing.assert_allclose(result.maps[i], alone, rtol=1e-4, atol=1e-6)
    with np.errstate(invalid="ignore"):  # an all-zero CAM: scipy says nan, defined as 0 here
      expected = np.nan_to_num([scipy.stats.spearmanr(np.ravel(o), np.ravel(a))[0]
                                for o, a in zip(result.original, alone)])
    np.testing.assert_allclose(result.spearman[i], expected, rtol=1e-4, atol=1e-5)
  assert result.spearman.shape == (5, 3)


def test_an_explainer_that_ignores_the_weights_stays_perfectly_correlated(net):
  model, variables, x = net
  edge = lambda model, variables, x, target: jnp.abs(jnp.diff(x, axis=1)).sum(-1)  # input only
  result = randomization_check(model, variables, x, edge, key=jax.random.key(3))
  # float32 sums over 31 x 32 ranks inside the jitted check: 1 to ~2e-6
  np.testing.assert_allclose(result.spearman, 1.0, rtol=1e-5)

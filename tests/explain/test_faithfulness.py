"""Deletion/insertion (Petsiuk et al. 2018) and the pointing game (Zhang et al. 2018) on
hand-made cases whose answer is known."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain.faithfulness import auc, deletion_insertion, pixel_ranks
from cnnviz_jax.explain.pointing_game import peak, pointing_game

SIZE = 8


class _MaskReader(nn.Module):
  """Two-class 'model' whose class-1 logit is the summed value of a fixed set of pixels."""
  mask: tuple  # (SIZE*SIZE,) 0/1 weights, flattened

  @nn.compact
  def __call__(self, x, train: bool = False):
    score = (x[..., 0].reshape(x.shape[0], -1) * jnp.asarray(self.mask)).sum(-1)
    return jnp.stack([jnp.zeros_like(score), score], -1)


@pytest.fixture(scope="module")
def case():
  mask = np.zeros((SIZE, SIZE), np.float32)
  mask[2:5, 3:6] = 1.0  # 9 pixels carry the evidence
  model = _MaskReader(tuple(mask.ravel()))
  x = jnp.broadcast_to(jnp.asarray(mask)[None, ..., None], (3, SIZE, SIZE, 1))  # evidence = 1
  return model, {}, x, mask


def _metric(steps=SIZE * SIZE):
  return jax.jit(functools.partial(deletion_insertion, steps=steps, blur_sigma=50.0),
                 static_argnums=0)


def test_ranks_follow_saliency_and_break_ties_at_random():
  sal = jnp.asarray([[[3.0, 1.0], [2.0, 2.0]]])
  np.testing.assert_array_equal(pixel_ranks(sal, (2, 2)), [[[0, 3], [1, 2]]])  # raster ties
  ties = {tuple(np.asarray(pixel_ranks(jnp.zeros((1, 2, 2)), (2, 2), jax.random.key(s))).ravel())
          for s in range(20)}
  assert len(ties) > 5  # a constant map deletes in random orders


def test_auc_is_the_trapezoid():
  np.testing.assert_allclose(auc(jnp.asarray([1.0, 1.0, 1.0])), 1.0)
  np.testing.assert_allclose(auc(jnp.asarray([1.0, 0.0, 0.0, 0.0])), 1 / 6)
  np.testing.assert_allclose(auc(jnp.linspace(0, 1, 11)), 0.5, rtol=1e-6)


def test_the_mask_itself_gives_the_best_deletion_and_insertion_curves(case):
  model, variables, x, mask = case
  exact = jnp.broadcast_to(jnp.asarray(mask), (3, SIZE, SIZE))
  metric = _metric()
  best = metric(model, variables, x, exact, 1)
  # deleting the 9 evidence pixels first drives p(class 1) = sigmoid(remaining evidence)
  # down to 1/2 after 9 of 64 steps and it stays there: the lowest possible curve
  expected = 1 / (1 + np.exp(-np.maximum(9 - np.arange(SIZE * SIZE + 1), 0)))
  np.testing.assert_allclose(best.deletion[0], expected, rtol=1e-5)
  for seed in range(3):  # any other ranking is no better, a random one clearly worse
    other = metric(model, variables, x, jax.random.uniform(jax.random.key(seed), (3, SIZE, SIZE)), 1)
    assert np.all(best.deletion_auc <= other.deletion_auc + 1e-6)
    assert np.all(best.insertion_auc >= other.insertion_auc - 1e-6)
    assert best.deletion_auc.mean() < other.deletion_auc.mean() - 0.05
  inverted = metric(model, variables, x, 1 - exact, 1)  # the worst ranking
  assert np.all(inverted.deletion_auc > best.deletion_auc + 0.4)


def test_a_constant_map_scores_like_a_random_map(case):
  model, variables, x, _ = case
  metric = jax.jit(functools.partial(deletion_insertion, steps=16, blur_sigma=50.0,
                                     key=jax.random.key(0)), static_argnums=0)
  xs = jnp.broadcast_to(x[:1], (64,) + x.shape[1:])
  constant = metric(model, variables, xs, jnp.zeros((64, SIZE, SIZE)), 1)
  random = metric(model, variables, xs, jax.random.uniform(jax.random.key(1), (64, SIZE, SIZE)), 1)
  assert abs(float(constant.deletion_auc.mean() - random.deletion_auc.mean())) < 0.03
  assert abs(float(constant.insertion_auc.mean() - random.insertion_auc.mean())) < 0.03


def test_curve_end_points_and_shapes(case):
  model, variables, x, mask = case
  result = _metric(8)(model, variables, x, jnp.asarray(np.random.rand(3, 4, 4)), None)
  assert result.deletion.shape == result.insertion.shape == (3, 9)
  full = 1 / (1 + np.exp(-9.0))  # all pixels present; target=None picks class 1 here
  np.testing.assert_allclose(result.deletion[:, 0], full, rtol=1e-5)
  np.testing.assert_allclose(result.insertion[:, -1], full, rtol=1e-5)
  np.testing.assert_allclose(result.deletion[:, -1], 0.5, rtol=1e-5)  # baseline 0: no evidence


def test_pointing_game_hand_made_cases():
  masks = np.zeros((3, 16, 16), bool)
  masks[:, 4:8, 10:14] = True
  on = np.zeros((3, 16, 16), np.float32)
  on[:, 5, 11] = 1.0  # peak on the object
  assert np.all(pointing_game(jnp.asarray(on), masks, 0))
  assert np.all(pointing_game(jnp.asarray(masks, jnp.float32), masks, 0))  # the mask itself
  off = np.zeros((3, 16, 16), np.float32)
  off[:, 4, 6] = 1.0  # 4 px left of the object
  assert not np.any(pointing_game(jnp.asarray(off), masks, 3.9))
  assert np.all(pointing_game(jnp.asarray(off), masks, 4.0))
  coarse = np.zeros((3, 4, 4), np.float32)
  coarse[:, 1, 3] = 1.0  # low-resolution map, upsampled: the peak lies in its cell
  cell = np.zeros_like(masks)
  cell[:, 4:8, 12:16] = True
  assert np.all(pointing_game(jnp.asarray(coarse), cell, 0))
  np.testing.assert_array_equal(peak(jnp.asarray(on), (16, 16)), [[5, 11]] * 3)


def test_pointing_game_constant_map_with_random_ties_hits_at_the_object_area_rate():
  masks = np.zeros((2000, 10, 10), bool)
  masks[:, :, :3] = True  # 30% of the image
  hits = pointing_game(jnp.zeros((2000, 10, 10)), masks, 0, key=jax.random.key(0))
  assert abs(float(hits.mean()) - 0.3) < 0.04

"""mass_inside: the fraction of a map's mass on the object, masks area-averaged to the map."""
import numpy as np
import pytest

import cnnviz_jax as cj


def _brute_force_cover(mask: np.ndarray, h: int, w: int) -> np.ndarray:
  """Each map cell's object fraction: upsample by the cell counts, then average blocks."""
  big = np.repeat(np.repeat(mask, h, axis=0), w, axis=1)  # (H·h, W·w): cells tile exactly
  return big.reshape(h, mask.shape[0], w, mask.shape[1]).mean(axis=(1, 3))


@pytest.mark.parametrize("size,cells", [(16, 4), (10, 4), (7, 3)])
def test_mass_inside_is_the_mass_weighted_object_cover_of_each_cell(size, cells):
  rng = np.random.RandomState(size)
  masks = (rng.rand(3, size, size) > 0.6).astype(np.float32)
  saliency = rng.rand(3, cells, cells).astype(np.float32)
  expected = [(s * _brute_force_cover(m, cells, cells)).sum() / s.sum()
              for s, m in zip(saliency, masks)]
  np.testing.assert_allclose(cj.explain.mass_inside(saliency, masks), expected, rtol=1e-5)


def test_input_attributions_count_their_magnitude_and_an_empty_map_scores_zero():
  masks = np.zeros((2, 4, 4), np.float32)
  masks[:, :2] = 1  # the top half is the object
  grads = np.zeros((2, 4, 4, 3), np.float32)
  grads[0, 0, 0] = [-3.0, 1.0, 0.0]  # |.| summed over channels: 4 inside
  grads[0, 3, 3] = [0.0, 0.0, 1.0]  # 1 outside
  np.testing.assert_allclose(cj.explain.mass_inside(grads, masks), [0.8, 0.0])


def test_shapes_that_do_not_fit_are_a_clear_error():
  with pytest.raises(ValueError, match=r"saliency must be \(B, h, w\) or \(B, H, W, C\)"):
    cj.explain.mass_inside(np.ones((2, 4, 4)), np.ones((3, 8, 8)))

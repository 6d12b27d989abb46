"""upsample / normalize / gaussian_blur against cv2, torch and scipy; epsilon safety."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain import maps


@pytest.mark.parametrize("src,dst", [((2, 2), (64, 64)), ((4, 7), (128, 96)), ((9, 9), (5, 3))])
def test_upsample_equals_cv2_resize(src, dst):
  cv2 = pytest.importorskip("cv2")
  m = np.random.RandomState(0).rand(3, *src).astype(np.float32)
  ref = np.stack([cv2.resize(a, dst[::-1], interpolation=cv2.INTER_LINEAR) for a in m])
  np.testing.assert_allclose(maps.upsample(m, dst), ref, atol=1e-5)


def test_upsample_align_corners_equals_torch_upsampling_bilinear():
  torch = pytest.importorskip("torch")
  m = np.random.RandomState(1).rand(2, 5, 4, 3).astype(np.float32)  # (B, h, w, C)
  ref = torch.nn.UpsamplingBilinear2d(size=(33, 17))(torch.from_numpy(m.transpose(0, 3, 1, 2)))
  ours = maps.upsample(m, (33, 17), align_corners=True, channels_last=True)
  np.testing.assert_allclose(ours, ref.numpy().transpose(0, 2, 3, 1), atol=1e-5)


def test_normalize_is_min_max_and_epsilon_safe():
  m = jnp.asarray(np.random.RandomState(2).randn(3, 4, 5), jnp.float32)
  n = maps.normalize(m)
  np.testing.assert_allclose(n.min(axis=(1, 2)), 0, atol=1e-7)
  np.testing.assert_allclose(n.max(axis=(1, 2)), 1, atol=1e-6)
  flat = jnp.zeros((2, 4, 4)).at[1].set(3.0)  # all-zero and constant maps
  np.testing.assert_array_equal(maps.normalize(flat), 0)
  grad = jax.grad(lambda z: maps.normalize(z).sum())(flat)
  assert bool(jnp.all(jnp.isfinite(grad)))


def test_gaussian_blur_equals_scipy():
  ndimage = pytest.importorskip("scipy.ndimage")
  x = np.random.RandomState(3).rand(2, 20, 24, 3).astype(np.float32)
  ours = maps.gaussian_blur(jnp.asarray(x), 2.0)
  ref = ndimage.gaussian_filter(x, sigma=(0, 2.0, 2.0, 0), mode="nearest", truncate=3.0)
  np.testing.assert_allclose(ours, ref, atol=1e-5)

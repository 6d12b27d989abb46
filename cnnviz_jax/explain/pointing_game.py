"""Pointing game: does the map's maximum fall on the object?

Zhang, Bargal, Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by Excitation
Backprop", IJCV 2018 (ECCV 2016; arXiv:1608.00507), section 5.1: a hit when the maximum
point of the map lies on the ground-truth region, with a tolerance (15 px at ImageNet/VOC
scale); accuracy = hits / (hits + misses).
"""
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import maps


def peak(saliency: jax.Array, size: tuple[int, int], key: jax.Array | None = None) -> jax.Array:
  """(B, 2) (row, col) of each map's maximum after bilinear upsampling to `size`.

  saliency: (B, h, w), or (B, H, W, C) attributions (|.| summed over channels). Ties (a
  constant map) are broken uniformly at random with `key`, else the first in raster order.
  """
  if saliency.ndim == 4:
    saliency = maps.attribution_map(saliency)
  if saliency.shape[1:] != tuple(size):
    saliency = maps.upsample(saliency, size)
  flat = saliency.reshape(saliency.shape[0], -1)
  ties = flat == flat.max(-1, keepdims=True)
  if key is not None:
    ties = jnp.where(ties, jax.random.uniform(key, flat.shape, minval=1.0, maxval=2.0), 0.0)
  index = jnp.argmax(ties, -1)
  return jnp.stack([index // size[1], index % size[1]], -1)


def pointing_game(saliency: jax.Array, masks: jax.Array, tolerance: float = 15.0,
                  key: jax.Array | None = None) -> jax.Array:
  """(B,) bool hits: the map's peak is within `tolerance` pixels of a mask pixel.

  masks: (B, H, W) ground-truth object masks (nonzero = object); maps are upsampled to
  (H, W). tolerance=0 asks for the peak on the object itself. Jit-able and shardable over
  the batch; takes no model. Hits are booleans, so not differentiable: `mass_inside` is the
  differentiable localization score.
  """
  size = masks.shape[1:]
  point = peak(saliency, size, key)  # (B, 2)
  rows = jnp.arange(size[0])[None, :, None] - point[:, 0, None, None]
  cols = jnp.arange(size[1])[None, None, :] - point[:, 1, None, None]
  near = rows**2 + cols**2 <= tolerance**2  # (B, H, W): disc around the peak
  return jnp.any(near & (masks != 0), axis=(1, 2))

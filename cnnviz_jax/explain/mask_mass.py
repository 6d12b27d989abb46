"""How much of a map lies on the object: the fraction of its mass inside a ground-truth mask.

The "right reasons" measure of Ross et al. 2017 (and of the explanation penalty in
cnnviz_jax.train.explanation_loss), as a number per image. Masks are brought to the map's
resolution by exact area averaging (a cell's value is the fraction of it the object
covers), so a coarse CAM cell half on the object counts half inside.
"""
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import maps


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in): the fraction of output cell i's extent that input pixel j covers."""
  edges_out = np.arange(n_out + 1) * (n_in / n_out)
  lo = np.maximum(edges_out[:-1, None], np.arange(n_in)[None, :])
  hi = np.minimum(edges_out[1:, None], np.arange(n_in)[None, :] + 1)
  return (np.maximum(hi - lo, 0) / (n_in / n_out)).astype(np.float32)


def area_downsample(masks: jax.Array, size: tuple[int, int]) -> jax.Array:
  """(B, H, W) -> (B, h, w): each cell the mean of the pixels under it (any ratio H/h)."""
  height, width = masks.shape[-2:]
  if (height, width) == tuple(size):
    return masks
  wy, wx = _area_matrix(height, size[0]), _area_matrix(width, size[1])
  return jnp.einsum("...HW,hH,wW->...hw", masks, wy, wx)


def mass_inside(saliency: jax.Array, masks: jax.Array) -> jax.Array:
  """(B,) fraction of each map's mass on the object, in [0, 1].

  saliency: (B, h, w) non-negative maps (CAMs, any resolution: the masks are area-averaged
  down to it), or (B, H, W, C) input attributions (|.| summed over channels). masks:
  (B, H, W), 1 (or any value in (0, 1]) on the object. A map with no mass scores 0: it
  does not point at the object. Differentiable; jit-able.
  """
  if saliency.ndim == 4:
    saliency = maps.attribution_map(saliency)
  if saliency.ndim != 3 or masks.ndim != 3 or saliency.shape[0] != masks.shape[0]:
    raise ValueError(f"saliency must be (B, h, w) or (B, H, W, C) and masks (B, H, W); got "
                     f"{saliency.shape} and {masks.shape}")
  saliency = maps.at_least_float32(saliency)
  cover = area_downsample(masks.astype(saliency.dtype), saliency.shape[1:])
  total = jnp.sum(saliency, axis=(1, 2))
  inside = jnp.sum(saliency * cover, axis=(1, 2))
  safe = jnp.where(total > 0, total, 1.0)  # no NaN gradient through the empty maps
  return jnp.where(total > 0, inside / safe, 0.0)

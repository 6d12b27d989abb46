"""Heatmap helpers: float32 promotion, attributions to maps, bilinear upsampling,
epsilon-safe min-max normalization, blur.

Upsampling is two small interpolation matrices applied with einsum, so it is exact,
differentiable and cheap at CAM resolutions:
  align_corners=False: half-pixel centers with edge clamping, as cv2.resize(INTER_LINEAR)
                       (what pytorch-grad-cam uses to bring CAMs to the image size);
  align_corners=True:  torch.nn.UpsamplingBilinear2d (what its Score-CAM masks use).
No antialiasing when shrinking (neither reference does it either).
"""
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-7  # pytorch-grad-cam's scale_cam_image epsilon


def at_least_float32(a: jax.Array) -> jax.Array:
  """`a` as float32, or its own dtype if wider: maps and scores of bfloat16/float16 models
  are computed in float32."""
  return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def attribution_map(attribution: jax.Array, absolute: bool = True) -> jax.Array:
  """(..., H, W, C) input attribution -> (..., H, W) map: |a| summed over channels
  (a summed, with absolute=False)."""
  return (jnp.abs(attribution) if absolute else attribution).sum(-1)


def _interp_matrix(n_in: int, n_out: int, align_corners: bool) -> np.ndarray:
  """(n_out, n_in) bilinear weights along one axis (rows sum to 1)."""
  i = np.arange(n_out, dtype=np.float64)
  if align_corners:
    src = i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(i)
  else:
    src = np.clip((i + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
  lo = np.minimum(np.floor(src).astype(int), n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = src - lo
  w = np.zeros((n_out, n_in))
  np.add.at(w, (np.arange(n_out), lo), 1 - frac)
  np.add.at(w, (np.arange(n_out), hi), frac)
  return w.astype(np.float32)


def upsample(maps: jax.Array, size: Sequence[int], align_corners: bool = False,
             channels_last: bool = False) -> jax.Array:
  """Bilinear resize of the two spatial axes to `size` = (H, W).

  maps: (..., h, w), or (..., h, w, C) with channels_last=True.
  """
  height, width = size
  if channels_last:
    h, w = maps.shape[-3:-1]
    wy, wx = _interp_matrix(h, height, align_corners), _interp_matrix(w, width, align_corners)
    return jnp.einsum("...hwc,Hh,Ww->...HWc", maps, wy, wx)
  h, w = maps.shape[-2:]
  wy, wx = _interp_matrix(h, height, align_corners), _interp_matrix(w, width, align_corners)
  return jnp.einsum("...hw,Hh,Ww->...HW", maps, wy, wx)


def normalize(maps: jax.Array, eps: float = EPS, axes: Sequence[int] = (-2, -1)) -> jax.Array:
  """(m - min) / (max - min + eps) over `axes`: an all-zero or constant map stays 0, never NaN
  (also with eps=0, the exact min-max that pictures use)."""
  lo = jnp.min(maps, axis=tuple(axes), keepdims=True)
  shifted = maps - lo
  span = jnp.max(shifted, axis=tuple(axes), keepdims=True) + eps
  return shifted / jnp.where(span > 0, span, 1.0)


def gaussian_blur(images: jax.Array, sigma: float) -> jax.Array:
  """Separable Gaussian blur of (B, H, W, C) images (edge-replicated borders)."""
  radius = max(1, int(round(3 * sigma)))
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  k = np.exp(-0.5 * (t / sigma) ** 2)
  k = jnp.asarray(k / k.sum(), images.dtype)
  channels = images.shape[-1]
  x = jnp.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
  for shape in ((len(k), 1, 1, channels), (1, len(k), 1, channels)):  # along H, then W
    x = jax.lax.conv_general_dilated(
        x, jnp.broadcast_to(k.reshape(shape[:2] + (1, 1)), shape), (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)
  return x

"""Perturbation attributions: occlusion and feature ablation (Captum's Occlusion and
FeatureAblation), and the machinery the sampling methods share.

Each perturbed copy of an image shows the baseline on some pixels and the image elsewhere.
All copies of a call go through the model as batched forwards: `chunk` copies of every image
per pass (B·chunk rows, `chunks.map_targets`), so memory stays bounded and one compiled
forward serves every pass. Scores come from `targets.scores_fn`, so every target form works,
`neuron(layer, channel)` included (Captum's NeuronFeatureAblation).

Attributions have the input's shape, (B, H, W, C), or (B, K, H, W, C) for several targets,
as Captum returns them (a region's value repeats over its pixels and channels). They are
differentiable in the parameters (differences of scores).
Segments: a per-image integer feature mask (B, H, W) with ids 0…F−1 (superpixels, e.g.
`skimage.segmentation.slic(..., start_label=0)`, or `grid_segments`). F is read from concrete
segments; under jit pass traced segments with `num_segments=F`.
"""
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import chunks, targets


def grid_segments(shape: Sequence[int], cells: int | Sequence[int] = 7) -> np.ndarray:
  """(B, H, W) int32 ids of a cells_y × cells_x grid, row-major, for images of `shape`
  (B, H, W[, C]); uneven sizes give cells that differ by one pixel."""
  batch, height, width = shape[:3]
  cells_y, cells_x = (cells, cells) if isinstance(cells, int) else cells
  if not 1 <= cells_y <= height or not 1 <= cells_x <= width:
    raise ValueError(f"a grid of {cells} cells needs 1…{height} × 1…{width}")
  rows = np.arange(height) * cells_y // height
  cols = np.arange(width) * cells_x // width
  ids = (rows[:, None] * cells_x + cols[None, :]).astype(np.int32)
  return np.broadcast_to(ids, (batch, height, width)).copy()


def segment_count(segments, num_segments: int | None = None) -> int:
  """F, the number of features of `segments`: num_segments, else max id + 1 of the concrete
  segments (Captum's count: ids missing from the mask are features that change nothing)."""
  if num_segments is not None:
    return int(num_segments)
  try:
    values = np.asarray(segments)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    raise ValueError("segments are traced (under jit): pass num_segments=F as well") from None
  if values.size and values.min() < 0:
    raise ValueError(f"segment ids must be >= 0, got {values.min()}")
  return int(values.max()) + 1


def check_segments(segments, x: jax.Array) -> jax.Array:
  """segments as a (B, H, W) int32 array for x (B, H, W, C); (H, W) is shared by all images."""
  segments = jnp.asarray(segments)
  if not jnp.issubdtype(segments.dtype, jnp.integer):
    raise ValueError(f"segments must hold integer ids, got dtype {segments.dtype}")
  if segments.shape not in (x.shape[1:3], x.shape[:3]):
    raise ValueError(f"segments must have shape (B, H, W) = {x.shape[:3]} or (H, W), "
                     f"got {segments.shape}")
  return jnp.broadcast_to(segments, x.shape[:3]).astype(jnp.int32)


def setup(model: nn.Module, variables, x: jax.Array, target: Any
          ) -> tuple[Callable, targets.Resolved, jax.Array]:
  """(forward z -> (B, N) scores, the bound targets, the clean images' (B, K) scores)."""
  forward, target = targets.scores_fn(model, variables, target)
  outputs = forward(x)
  resolved = targets.resolve(target, outputs)
  return forward, resolved, resolved.scores(outputs)


def perturbed_scores(forward: Callable, resolved: targets.Resolved, x: jax.Array,
                     baseline: jax.Array, off: Callable[[jax.Array], jax.Array], num: int,
                     chunk: int | None) -> jax.Array:
  """(num, B, K) target scores of `num` perturbed copies of every image: copy i shows the
  baseline where off(i) ((B or 1, H, W) bool) holds and the image elsewhere."""
  def scores(i):
    return resolved.scores(forward(jnp.where(off(i)[..., None], baseline, x)))

  return chunks.map_targets(scores, num, chunk, x)


def as_baseline(baseline: Any, x: jax.Array) -> jax.Array:
  return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


def paint(values: jax.Array, segments: jax.Array, x: jax.Array, resolved: targets.Resolved
          ) -> jax.Array:
  """Per-feature values (B, K, F) spread over their segments: (B[, K], H, W, C)."""
  batch, height, width, channels = x.shape
  flat = jnp.broadcast_to(segments.reshape(batch, 1, -1), (batch, values.shape[1],
                                                           height * width))
  maps = jnp.take_along_axis(values, flat, axis=2).reshape(batch, -1, height, width)
  return finish(maps, x, resolved)


def finish(maps: jax.Array, x: jax.Array, resolved: targets.Resolved) -> jax.Array:
  """(B, K, H, W) maps in the input's shape: (B[, K], H, W, C)."""
  maps = jnp.broadcast_to(maps[..., None], (*maps.shape, x.shape[-1])).astype(x.dtype)
  return maps if resolved.multi else maps[:, 0]


def _pair(value, name: str) -> tuple[int, int]:
  pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
  if len(pair) != 2 or min(pair) < 1:
    raise ValueError(f"{name} must be a positive int or (height, width), got {value!r}")
  return int(pair[0]), int(pair[1])


def window_cover(size: int, window: int, stride: int) -> np.ndarray:
  """(count, size) bool: which pixels of an axis each window position covers. As Captum:
  windows start at 0, stride, …, ceil((size − window) / stride) · stride, and the last is cut
  off at the border; stride <= window so that every pixel is covered."""
  if window > size:
    raise ValueError(f"occlusion window {window} exceeds the image's size {size}")
  if window < size and stride > window:
    raise ValueError(f"occlusion stride {stride} > window {window} would skip pixels")
  starts = np.arange(math.ceil((size - window) / stride) + 1) * stride
  pixels = np.arange(size)
  return (pixels >= starts[:, None]) & (pixels < starts[:, None] + window)


def occlusion(model: nn.Module, variables, x: jax.Array, target: Any = None,
              window: int | Sequence[int] = 8, stride: int | Sequence[int] = 4,
              baseline: Any = 0.0, *, chunk: int | None = 16) -> jax.Array:
  """Score drop when a window (all channels) shows the baseline, averaged over the windows
  that cover each pixel.

  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
  arXiv:1311.2901. As Captum's Occlusion with sliding_window_shapes (C, window, window),
  strides (C, stride, stride) and the same baselines (a scalar or an array broadcastable to
  x); its windows (`window_cover`) and its average of overlapping windows.
  chunk: windows per image per forward pass (B·chunk rows).
  """
  (window_y, window_x), (stride_y, stride_x) = _pair(window, "window"), _pair(stride, "stride")
  rows = window_cover(x.shape[1], window_y, stride_y)  # (ny, H)
  cols = window_cover(x.shape[2], window_x, stride_x)  # (nx, W)
  forward, resolved, clean = setup(model, variables, x, target)
  rows_on, cols_on = jnp.asarray(rows), jnp.asarray(cols)
  num_x = cols.shape[0]

  def off(i):
    return (rows_on[i // num_x][:, None] & cols_on[i % num_x][None, :])[None]

  scores = perturbed_scores(forward, resolved, x, as_baseline(baseline, x), off,
                            rows.shape[0] * num_x, chunk)
  drops = (clean[None] - scores).reshape(rows.shape[0], num_x, *clean.shape)
  rows_f, cols_f = jnp.asarray(rows, clean.dtype), jnp.asarray(cols, clean.dtype)
  total = jnp.einsum("yxbk,yh,xw->bkhw", drops, rows_f, cols_f)
  counts = jnp.asarray(rows.sum(0)[:, None] * cols.sum(0)[None, :], clean.dtype)
  return finish(total / counts, x, resolved)


def feature_ablation(model: nn.Module, variables, x: jax.Array, target: Any = None,
                     segments: Any = None, baseline: Any = 0.0, *,
                     num_segments: int | None = None, chunk: int | None = 16) -> jax.Array:
  """Score drop when one segment shows the baseline, on every pixel of that segment.

  The ablation / occlusion family of Zeiler & Fergus (ECCV 2014, arXiv:1311.2901) on
  superpixels; as Captum's FeatureAblation with feature_mask = segments (B, 1, H, W) and
  the same baselines. With target=neuron(layer, channel) it is Captum's
  NeuronFeatureAblation. chunk: segments per image per forward pass.
  """
  if segments is None:
    raise ValueError("feature_ablation needs segments (B, H, W): e.g. grid_segments(x.shape)")
  count = segment_count(segments, num_segments)
  segments = check_segments(segments, x)
  forward, resolved, clean = setup(model, variables, x, target)
  scores = perturbed_scores(forward, resolved, x, as_baseline(baseline, x),
                            lambda i: segments == i, count, chunk)
  return paint(jnp.moveaxis(clean[None] - scores, 0, -1), segments, x, resolved)

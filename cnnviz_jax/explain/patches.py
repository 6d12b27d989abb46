"""Max-activating patches: the dataset crops that excite a channel most (Zeiler & Fergus 2014).

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014
(arXiv:1311.2901), section 4: the top-k activations of a feature map over a dataset and
the image patches under them. A patch is exactly the input region under the unit's
receptive field (Araujo et al., Distill 2019; see receptive_field.py): parts outside the
image are filled with `fill` and marked False in `inside`.
"""
import functools
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import maps
from cnnviz_jax.explain.receptive_field import ReceptiveField, receptive_field
from cnnviz_jax.models import taps


class Patches(NamedTuple):
  images: jax.Array  # (C, k, Rh, Rw, ch) input under each unit's receptive field
  inside: jax.Array  # (C, k, Rh, Rw) bool: the pixel lies inside the image
  activations: jax.Array  # (C, k) the unit's activation, descending
  index: jax.Array  # (C, k) image index in x
  position: jax.Array  # (C, k, 2) the unit's (row, col) in the layer's map
  box: jax.Array  # (C, k, 4) (top, left, bottom, right) in the image, clipped, half-open
  field: ReceptiveField  # the layer's receptive field


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _batch_top_k(model: nn.Module, layer: str, k: int, variables, xb, valid, offset, channels):
  """Top-k (value, image, row, col) per channel over one batch; padding images never win."""
  _, acts = taps.apply_with_taps(model, variables, xb, [layer])
  a = jnp.take(acts[layer], channels, axis=-1)
  a = maps.at_least_float32(a)  # (b, h, w, C)
  a = jnp.where(valid[:, None, None, None], a, -jnp.inf)
  b, h, w, c = a.shape
  values, flat = jax.lax.top_k(a.reshape(b * h * w, c).T, min(k, b * h * w))  # (C, k)
  return values, jnp.stack([flat // (h * w) + offset, flat // w % h, flat % w], -1)


@functools.partial(jax.jit, static_argnums=(2,))
def _crops(x, where, field: ReceptiveField, fill):
  """(N, Rh, Rw, ch) crops and (N, Rh, Rw) inside-masks under units where = (image, row, col)."""
  size = field.size
  pad = [(0, 0)] + [(r, r) for r in size] + [(0, 0)]  # any region overlapping the image fits
  padded = jnp.pad(x, pad, constant_values=fill)
  mask = jnp.pad(jnp.ones(x.shape[:-1] + (1,), bool), pad)

  def crop(i, r, c):
    start = [r * field.stride[0] - field.padding[0] + size[0],
             c * field.stride[1] - field.padding[1] + size[1]]
    start += [jnp.zeros_like(r)]  # one index dtype (a Python 0 is int64 under x64)
    slice_ = lambda a: jax.lax.dynamic_slice(a[i], start, list(size) + [a.shape[-1]])
    return slice_(padded), slice_(mask)[..., 0]

  return jax.vmap(crop)(where[:, 0], where[:, 1], where[:, 2])


def max_activating_patches(model: nn.Module, variables, x, layer: str,
                           channels: int | Sequence[int] | None = None, k: int = 9, *,
                           batch_size: int = 256, fill: float = 0.0) -> Patches:
  """Top-k units per channel of `layer` over images x (N, H, W, ch), and their patches.

  channels: one index, several, or None for all; results are stacked per channel (C, k).
  The dataset is read in batches of `batch_size` (each jitted, one compile); a running
  top-k is kept on device, so memory does not grow with N.
  Contract: jits and vmaps over `variables`, and x may be sharded; the outputs have no
  batch axis (a top-k over the whole dataset). `activations` are differentiable in the
  parameters; indices, positions and crops are picks, not differentiable.
  """
  n = x.shape[0]
  shapes = taps.check_layers(model, variables, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype),
                             [layer])
  num_channels = shapes[layer][-1]
  channels = (np.arange(num_channels) if channels is None else np.atleast_1d(channels))
  if np.any((channels < 0) | (channels >= num_channels)):
    raise ValueError(f"channels must be in [0, {num_channels}) for layer {layer!r}; "
                     f"got {channels.tolist()}")
  field = receptive_field(model, layer, variables, input_shape=(1,) + x.shape[1:])
  batch_size = min(batch_size, n)
  values, where = None, None
  for start in range(0, n, batch_size):
    xb = jnp.asarray(x[start:start + batch_size])
    valid = jnp.arange(batch_size) < xb.shape[0]
    if xb.shape[0] < batch_size:  # pad the last batch: one compiled shape for all batches
      xb = jnp.pad(xb, [(0, batch_size - xb.shape[0])] + [(0, 0)] * (xb.ndim - 1))
    v, w = _batch_top_k(model, layer, k, variables, xb, valid, start, jnp.asarray(channels))
    if values is not None:  # merge with the running top-k
      v, w = jnp.concatenate([values, v], 1), jnp.concatenate([where, w], 1)
      v, keep = jax.lax.top_k(v, min(k, v.shape[1]))
      w = jnp.take_along_axis(w, keep[..., None], 1)
    values, where = v, w
  crops, inside = _crops(jnp.asarray(x), where.reshape(-1, 3), field, fill)
  c, kk = values.shape
  rows = where[..., 1:2] * field.stride[0] - field.padding[0]
  cols = where[..., 2:3] * field.stride[1] - field.padding[1]
  box = jnp.concatenate([jnp.maximum(rows, 0), jnp.maximum(cols, 0),
                         jnp.minimum(rows + field.size[0], x.shape[1]),
                         jnp.minimum(cols + field.size[1], x.shape[2])], -1)
  return Patches(crops.reshape((c, kk) + crops.shape[1:]),
                 inside.reshape((c, kk) + inside.shape[1:]), values, where[..., 0],
                 where[..., 1:], box, field)

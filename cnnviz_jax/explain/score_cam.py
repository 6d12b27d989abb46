"""Score-CAM: weight each channel by the score of the input masked with it.

Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR workshops 2020. arXiv:1910.01279 (Algorithm 1):
  M^k  = s(Upsample(A^k))            bilinear to the input size, min-max normalised
  S^k  = f(x ∘ M^k)                  one forward per channel (per image)
  α^k  = softmax_k(S^k)              over channels (the f(x_b) baseline cancels)
  map  = ReLU(sum_k α^k A^k)         at the layer's resolution
As pytorch-grad-cam: align_corners=True upsampling (torch's UpsamplingBilinear2d),
1e-8 in the normaliser, softmax of the raw target scores over channels.

Batched over (image, channel) pairs in chunks of `chunk` masked images under lax.map,
so memory is bounded by the chunk. Exact saving: a channel that is constant at the
layer has an all-zero mask, so every such channel's input is the zero image; those are
sorted last and chunks holding only them reuse one forward of the zero image. (In exact
arithmetic pytorch-grad-cam's mask is zero there too; its float upsampling can leave a
~1e-7 ripple that its normaliser blows up, for non-zero constant channels only.)
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam, layer_gradients, maps, targets
from cnnviz_jax.models import taps


def _channel_scores(model: nn.Module, variables, x: jax.Array, acts: jax.Array,
                    resolved: targets.Resolved, chunk: int, align_corners: bool) -> jax.Array:
  """Scores of every target for every channel's masked input: (B, C, K)."""
  batch, _, _, channels = acts.shape
  size = x.shape[1:3]
  constant = jnp.max(acts, axis=(1, 2)) == jnp.min(acts, axis=(1, 2))  # (B, C)
  order = jnp.argsort(constant.reshape(-1), stable=True)  # live pairs first
  live = jnp.sum(~constant)
  total = batch * channels
  padded = -(-total // chunk) * chunk
  order = jnp.concatenate([order, jnp.full((padded - total,), order[-1])])

  def rows_target(b):  # the targets of the images these rows come from
    return resolved if resolved.classes is None else targets.Resolved(
        resolved.classes[b], None, resolved.multi, resolved.num)

  zero_outputs = model.apply(variables, jnp.zeros((1, *x.shape[1:]), x.dtype), train=False)

  def masked_scores(idx):  # (chunk,) pair ids -> (chunk, K)
    b, c = idx // channels, idx % channels
    mask = maps.upsample(acts[b, :, :, c], size, align_corners=align_corners)  # (n, H, W)
    mask = maps.normalise(mask, eps=1e-8)
    mask = jnp.where(constant[b, c][:, None, None], 0.0, mask)
    outputs = model.apply(variables, x[b] * mask[..., None], train=False)
    return rows_target(b).scores(outputs)

  def zero_scores(idx):
    outputs = jnp.broadcast_to(zero_outputs, (len(idx), zero_outputs.shape[-1]))
    return rows_target(idx // channels).scores(outputs)

  def step(start):
    idx = jax.lax.dynamic_slice(order, (start,), (chunk,))
    return jax.lax.cond(start < live, masked_scores, zero_scores, idx)

  scores = jax.lax.map(step, jnp.arange(0, padded, chunk)).reshape(padded, -1)[:total]
  return jnp.zeros_like(scores).at[order[:total]].set(scores).reshape(batch, channels, -1)


def score_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
              chunk: int = 32, align_corners: bool = True,
              size: Sequence[int] | None = None) -> jax.Array:
  """Score-CAM maps (B, h, w), or (B, K, h, w) for several targets; >= 0.

  layer / target / size as grad_cam (several layers are combined the same way).
  chunk: masked images per forward pass (memory bound).
  """
  layers = layer_gradients.resolve_layers(model, variables, x, layer)
  outputs, acts = taps.apply_with_taps(model, variables, x, layers)
  resolved = targets.resolve(target, outputs)
  cams = []
  for name in layers:
    scores = _channel_scores(model, variables, x, acts[name], resolved, chunk, align_corners)
    weights = jax.nn.softmax(scores, axis=1)  # over channels: (B, C, K)
    cams.append(jax.nn.relu(jnp.einsum("bhwc,bck->bkhw", acts[name], weights)))
  result = cam.combine_layers(cams, size)
  return result if resolved.multi else result[:, 0]

"""Score-CAM: weight each channel by the score of the input masked with it.

Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR workshops 2020. arXiv:1910.01279 (Algorithm 1):
  M^k  = s(Upsample(A^k))            bilinear to the input size, min-max normalized
  S^k  = f(x ∘ M^k)                  one forward per channel (per image)
  α^k  = softmax_k(S^k)              over channels (the f(x_b) baseline cancels)
  map  = ReLU(sum_k α^k A^k)         at the layer's resolution
As pytorch-grad-cam: align_corners=True upsampling (torch's UpsamplingBilinear2d),
1e-8 in the normalizer, softmax of the raw target scores over channels.

Batched over channels under lax.map, `chunk` channels of every image per forward pass
(B·chunk masked images: the memory bound). Exact saving: a channel that is constant at
the layer has an all-zero mask, so its input is the zero image; constant channels are
sorted last and steps holding only them reuse one forward of the zero image. (In exact
arithmetic pytorch-grad-cam's mask is zero there too; its float upsampling can leave a
~1e-7 ripple that its normalizer blows up, for non-zero constant channels only.)
The masked forwards are `targets.scores_fn`'s, so a neuron target scores masked inputs by
the neuron; eigen_smooth and aug_smooth are pytorch-grad-cam's (perturbation_cam.py).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import maps, perturbation_cam, targets


def _channel_scores(forward: perturbation_cam.Forward, x: jax.Array, acts: jax.Array,
                    resolved: targets.Resolved, chunk: int, align_corners: bool) -> jax.Array:
  """Scores of every target for every channel's masked input: (B, C, K).

  Each step masks `chunk` channels of every image (B·chunk forwards); channels are
  sorted per image (live first), so the batch axis stays intact and can stay sharded.
  """
  batch, _, _, channels = acts.shape
  size = x.shape[1:3]
  constant = jnp.max(acts, axis=(1, 2)) == jnp.min(acts, axis=(1, 2))  # (B, C)
  order = jnp.argsort(constant, axis=1, stable=True)  # live channels first, per image
  most_live = jnp.max(jnp.sum(~constant, axis=1))
  padded = -(-channels // chunk) * chunk
  order = jnp.concatenate([order, jnp.repeat(order[:, -1:], padded - channels, axis=1)], 1)
  rows = resolved.repeat(chunk)  # rows are image-major: (B·chunk)
  zero_outputs = forward(jnp.zeros((1, *x.shape[1:]), x.dtype))

  def masked_scores(idx):  # (B, chunk) channel ids -> (B, chunk, K)
    picked = jnp.take_along_axis(acts, idx[:, None, None, :], axis=3)  # (B, h, w, chunk)
    mask = maps.upsample(picked, size, align_corners=align_corners, channels_last=True)
    mask = maps.normalize(mask, eps=1e-8, axes=(1, 2))  # (B, H, W, chunk)
    mask = jnp.where(jnp.take_along_axis(constant, idx, axis=1)[:, None, None, :], 0.0, mask)
    mask = jnp.moveaxis(mask, -1, 1)[..., None].astype(x.dtype)  # (B, chunk, H, W, 1)
    masked = x[:, None] * mask  # (B, chunk, H, W, C)
    outputs = forward(masked.reshape(-1, *x.shape[1:]))
    return rows.scores(outputs).reshape(batch, chunk, -1)

  def zero_scores(idx):  # every image's chunk is constant: reuse f(zero image)
    outputs = jnp.broadcast_to(zero_outputs, (batch * chunk, zero_outputs.shape[-1]))
    return rows.scores(outputs).reshape(batch, chunk, -1)

  def step(start):
    idx = jax.lax.dynamic_slice_in_dim(order, start, chunk, axis=1)
    return jax.lax.cond(start < most_live, masked_scores, zero_scores, idx)

  scores = jax.lax.map(step, jnp.arange(0, padded, chunk))  # (steps, B, chunk, K)
  scores = jnp.moveaxis(scores, 0, 1).reshape(batch, padded, -1)[:, :channels]
  unsort = jnp.argsort(order[:, :channels], axis=1)
  return jnp.take_along_axis(scores, unsort[..., None], axis=1)


def score_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
              chunk: int = 32, align_corners: bool = True, eigen_smooth: bool = False,
              aug_smooth: bool = False, size: Sequence[int] | None = None) -> jax.Array:
  """Score-CAM maps (B, h, w), or (B, K, h, w) for several targets; >= 0.

  layer / target / eigen_smooth / aug_smooth / size as grad_cam (several layers are
  combined the same way; aug_smooth masks each of the six variants with its own channels).
  chunk: channels per image per forward pass (B·chunk masked images at a time).
  """
  def weights(forward, z, name, acts, resolved):
    del name
    a = maps.at_least_float32(acts)
    scores = _channel_scores(forward, z, a, resolved, chunk, align_corners)
    return jax.nn.softmax(scores.astype(a.dtype), axis=1)  # over channels: (B, C, K)

  return perturbation_cam.perturbation_cams(model, variables, x, layer, target, weights,
                                            eigen_smooth=eigen_smooth, aug_smooth=aug_smooth,
                                            size=size)

"""Deletion and insertion curves and their AUCs: does the map rank pixels by importance?

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018 (arXiv:1806.07421), section 4.1. Deletion removes the most salient
pixels first (replaced by a baseline, 0 by default) and tracks the target's probability:
a faithful map makes it fall fast (low AUC). Insertion adds them, most salient first, to a
blurred copy: the probability should rise fast (high AUC).
"""
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import maps


class DeletionInsertion(NamedTuple):
  deletion_auc: jax.Array  # (B,) lower is more faithful
  insertion_auc: jax.Array  # (B,) higher is more faithful
  deletion: jax.Array  # (B, steps + 1) target probability after 0, 1/steps, …, all pixels
  insertion: jax.Array  # (B, steps + 1)


def pixel_ranks(saliency: jax.Array, size: tuple[int, int], key: jax.Array | None = None
                ) -> jax.Array:
  """(B, H, W) int: 0 for the most salient pixel. Maps are upsampled (bilinear) to `size`.

  saliency: (B, h, w), or (B, H, W, C) input attributions (|.| summed over channels).
  Ties are broken at random with `key` (a constant map then deletes in random order,
  the natural baseline); with key=None in raster order.
  """
  if saliency.ndim == 4:
    saliency = maps.attribution_map(saliency)
  if saliency.shape[1:] != tuple(size):
    saliency = maps.upsample(saliency, size)
  flat = maps.at_least_float32(saliency.reshape(saliency.shape[0], -1))
  tiebreak = (jnp.broadcast_to(jnp.arange(flat.shape[1]), flat.shape) if key is None
              else jax.random.uniform(key, flat.shape))
  order = jax.vmap(lambda s, t: jnp.lexsort((t, -s)))(flat, tiebreak)  # most salient first
  ranks = jnp.zeros_like(order).at[jnp.arange(flat.shape[0])[:, None], order].set(
      jnp.arange(flat.shape[1]))
  return ranks.reshape(saliency.shape)


def auc(curve: jax.Array) -> jax.Array:
  """Trapezoidal area under (..., steps + 1) values at fractions 0, 1/steps, …, 1."""
  return (curve[..., 1:] + curve[..., :-1]).sum(-1) / (2 * (curve.shape[-1] - 1))


def deletion_insertion(model: nn.Module, variables, x: jax.Array, saliency: jax.Array,
                       target: Any = None, *, steps: int = 50, baseline: float | jax.Array = 0.0,
                       blur_sigma: float = 5.0, key: jax.Array | None = None,
                       steps_per_batch: int = 1) -> DeletionInsertion:
  """Deletion and insertion curves of `saliency` for images x (B, H, W, C).

  target: None (each image's top-1 class on x) or int / (B,) class indices; the score is
  the softmax probability of that class, as Petsiuk et al. baseline: what deleted pixels
  become (a scalar or an array broadcastable to x). Insertion starts from x blurred with
  `blur_sigma` pixels. The model sees 2B images per step; `steps_per_batch` steps are
  evaluated at once (memory vs speed). Jit-able with `steps`/`steps_per_batch` static.
  """
  num, height, width = x.shape[0], x.shape[1], x.shape[2]
  logits = model.apply(variables, x, train=False)
  if target is None:
    target = jnp.argmax(logits, -1)
  target = jnp.broadcast_to(jnp.asarray(target), (num,))
  ranks = pixel_ranks(saliency, (height, width), key)[..., None]  # (B, H, W, 1)
  removed = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  blurred = maps.gaussian_blur(x, blur_sigma)

  def probabilities(t):  # the two images after the t most salient steps' pixels changed
    changed = ranks < jnp.round(t * height * width / steps).astype(ranks.dtype)
    batch = jnp.concatenate([jnp.where(changed, removed, x), jnp.where(changed, x, blurred)])
    logits = model.apply(variables, batch, train=False)
    probs = jax.nn.softmax(maps.at_least_float32(logits))
    picked = jnp.take_along_axis(probs, jnp.tile(target, 2)[:, None], -1)[:, 0]
    return picked.reshape(2, num)

  curves = jax.lax.map(probabilities, jnp.arange(steps + 1), batch_size=steps_per_batch)
  deletion, insertion = jnp.moveaxis(curves, 0, -1)  # (2, B, steps + 1)
  return DeletionInsertion(auc(deletion), auc(insertion), deletion, insertion)

"""Ablation-CAM: weigh each channel by how much the target score drops without it.

Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
Gradient-free Localization", WACV 2020 (pp. 983-991). As pytorch-grad-cam's AblationCAM:
  A^k ablated   channel k of the layer set to 0 where the image's minimum activation at the
                layer is exactly 0 (after a ReLU), else to min(A) - 1e7
  S_k           the target score of the network from the layer upward on the ablated A
  w^k           (S - S_k) / S           (S: the unablated score; as theirs, no epsilon)
  map           ReLU(sum_k w^k A^k)     at the layer's resolution (eigen_smooth, aug_smooth,
                                        several layers and size as grad_cam)
Where we differ: pytorch-grad-cam's ablation layer lowers the value by another 1e7 for each
row of its batch of ablated copies (it takes the minimum of the batch it is editing), so the
k-th copy of each of its batches (batch_size 32) gets min - (k + 1)·1e7; we use min - 1e7 for
every channel, which is theirs with batch_size=1. Both coincide whenever the minimum is 0
(after a ReLU). All channels are ablated (their ratio_channels_to_ablate=1.0, the default; the
experimental subset is not offered).

S comes from the same batched pass from the layer upward as the S_k (one more step, nothing
ablated), so their float32 roundings correlate and cancel in S - S_k. Removing one of 2,048
channels moves a score by ~1e-4 of itself: with S from the model's own forward pass (another
batch size, other XLA kernels) the weights carried ~1e-4 of the map's rounding noise, as
pytorch-grad-cam's do in float32 (1.6e-4 from its float64 result on a random ResNet-50;
ours 1.6e-5).

Speed: pytorch-grad-cam runs the whole network for every ablated copy. Here the layer
outputs the ablated activations through `taps.tapping(replace=...)`, so nothing reads the
layers below and XLA drops them: each copy costs the network from the layer upward (at a
ResNet's last layer, the pooling and the classifier). `chunk` channels of every image are
ablated per pass (B·chunk rows, under lax.map: memory stays bounded).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import maps, perturbation_cam, targets
from cnnviz_jax.models import taps

ABLATION_OFFSET = 1e7  # pytorch-grad-cam's ABLATION_VALUE, below the minimum


def ablated_scores(forward: perturbation_cam.Forward, x: jax.Array, layer: str,
                   acts: jax.Array, resolved: targets.Resolved, chunk: int
                   ) -> tuple[jax.Array, jax.Array]:
  """Target scores (B, K) of the unablated layer and (B, C, K) with each channel ablated in
  turn, all from the same batched pass from the layer upward."""
  batch, height, width, channels = acts.shape
  low = jnp.min(acts, axis=(1, 2, 3))
  value = jnp.where(low == 0, jnp.zeros_like(low), low - ABLATION_OFFSET)  # (B,), per image
  chunk = min(chunk, channels)
  steps = -(-channels // chunk)
  ids = jnp.minimum(jnp.arange(steps * chunk), channels - 1).reshape(steps, chunk)
  ids = jnp.concatenate([jnp.full((1, chunk), channels), ids])  # first: no channel (id C)
  rows = resolved.repeat(chunk)  # image-major: (B·chunk)
  # the layers below the tap are dead code: this only gives the forward its batch shape
  x_rows = jnp.broadcast_to(x[:, None], (batch, chunk, *x.shape[1:]))
  x_rows = x_rows.reshape(batch * chunk, *x.shape[1:])

  def step(idx):  # (chunk,) channel ids -> (B, chunk, K)
    hit = (jnp.arange(channels) == idx[:, None])[None, :, None, None, :]  # (1, chunk, ..., C)
    ablated = jnp.where(hit, value.astype(acts.dtype)[:, None, None, None, None],
                        acts[:, None])  # (B, chunk, h, w, C)
    with taps.tapping(replace={layer: ablated.reshape(-1, height, width, channels)}):
      outputs = forward(x_rows)
    return rows.scores(outputs).reshape(batch, chunk, -1)

  scores = jax.lax.map(step, ids)  # (1 + steps, B, chunk, K)
  ablated = jnp.moveaxis(scores[1:], 0, 1).reshape(batch, steps * chunk, -1)[:, :channels]
  return scores[0, :, 0], ablated


def ablation_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
                 eigen_smooth: bool = False, aug_smooth: bool = False,
                 size: Sequence[int] | None = None, chunk: int = 32) -> jax.Array:
  """Ablation-CAM maps (B, h, w), or (B, K, h, w) for several targets; >= 0.

  layer / target / eigen_smooth / aug_smooth / size as grad_cam (see the module docstring).
  chunk: channels ablated per image per pass (B·chunk rows from the layer upward).
  Differentiable in the parameters (a zero unablated score divides by zero, as theirs).
  """
  def weights(forward, z, name, acts, resolved):
    original, scores = jax.tree.map(maps.at_least_float32,
                                    ablated_scores(forward, z, name, acts, resolved, chunk))
    return (original[:, None] - scores) / original[:, None]

  return perturbation_cam.perturbation_cams(model, variables, x, layer, target, weights,
                                            eigen_smooth=eigen_smooth, aug_smooth=aug_smooth,
                                            size=size)

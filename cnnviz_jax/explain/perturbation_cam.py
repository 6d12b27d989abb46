"""The machinery of the gradient-free CAMs whose channel weights are the target scores of
perturbed forward passes (Score-CAM masks the input with each channel, Ablation-CAM zeroes
each channel at the layer): a weights rule (B, C, K) per layer, the rest shared.

  one forward pass (`targets.scores_fn`: every target form, neuron targets included)
  records the layers' activations A and the target scores; then per layer
    w = channel_weights(...)                    (B, C, K), one column per target
    map = ReLU(sum_c w_c A_c)                   or, with eigen_smooth, ReLU of the weighted
                                                activations' first principal component
  layers and `size` are combined as in cam.py (pytorch-grad-cam's way), and aug_smooth is
  cam.py's test-time augmentation: the six variants explained in one batch.
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam, layer_gradients, maps, targets
from cnnviz_jax.models import taps

Forward = Callable[[jax.Array], jax.Array]
# (forward, x, layer name, its activations (B, h, w, C), resolved targets) -> (B, C, K)
ChannelWeights = Callable[[Forward, jax.Array, str, jax.Array, targets.Resolved], jax.Array]


def weighted_map(acts: jax.Array, weights: jax.Array, eigen_smooth: bool) -> jax.Array:
  """ReLU of the channel-weighted activations, summed or eigen-projected: (B, h, w, C) and
  (B, C, K) -> (B, K, h, w)."""
  if not eigen_smooth:  # no (B, K, h, w, C) product: 1,000 targets fit
    return jax.nn.relu(jnp.einsum("bhwc,bck->bkhw", acts, weights))
  batch, h, w, channels = acts.shape
  weighted = acts[:, None] * jnp.moveaxis(weights, 2, 1)[:, :, None, None, :]
  projected = cam.eigen_projection(weighted.reshape(-1, h, w, channels))
  return jax.nn.relu(projected.reshape(batch, -1, h, w))


def perturbation_cams(model: nn.Module, variables, x: jax.Array, layer, target: Any,
                      channel_weights: ChannelWeights, *, eigen_smooth: bool = False,
                      aug_smooth: bool = False, size: Sequence[int] | None = None) -> jax.Array:
  """Maps (B, h, w), or (B, K, h, w) for several targets; see the module docstring."""
  layers = layer_gradients.resolve_layers(model, variables, x, layer)
  images = x.shape[0]
  if aug_smooth:
    x = cam.augment(x)
  forward, target = targets.scores_fn(model, variables, target)
  with taps.tapping(layers) as acts:
    outputs = forward(x)
  resolved = targets.resolve(target, outputs, tile=cam.AUGMENTATIONS if aug_smooth else 1)
  cams = []
  for name in layers:
    a = maps.at_least_float32(acts[name])
    weights = channel_weights(forward, x, name, acts[name], resolved)
    cams.append(weighted_map(a, weights.astype(a.dtype), eigen_smooth))
  result = cam.combine_layers(cams, size)  # (B·variants, K, h, w)
  if aug_smooth:
    result = cam.deaugment(result, images)
  return result if resolved.multi else result[:, 0]

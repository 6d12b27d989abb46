"""FullGrad: the input-gradient and every layer's bias-gradient, as saliency maps.

Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization",
NeurIPS 2019. arXiv:1905.00780. f(x) = ∇f(x)·x + Σ_layers ∇_b f · b (exact for ReLU nets);
its map post-processes each part, as pytorch-grad-cam's FullGrad:
  input part    |x ⊙ ∂S/∂x| per color channel
  bias part     |b_c · ∂S/∂z_c| per channel c of every 2-D convolution with a bias and every
                BatchNorm, z its output; a BatchNorm's bias in eval mode is the implicit
                β - μ·γ/√(σ² + ε)
  each channel map min-max normalized (ε 1e-7) at its resolution, bilinearly resized to the
  input (cv2's half-pixel rule), all summed and normalized: (B, H, W) in [0, 1].
Layers are found by a flax method interceptor on nn.Conv / nn.BatchNorm (any depth, 4-D
outputs), which adds a zero to each output: the gradient with respect to it is ∂S/∂z. So the
layers of any linen model count, not only the registered ones; dense layers do not (neither
do theirs: nn.Conv2d and nn.BatchNorm2d only). A channel map is resized after the sum over
its layer's channels (resizing is linear: the same map, one resize per layer, where theirs
resizes every channel).
eigen_smooth: as theirs, the 3 + L part maps shrunk to H/8 × W/8, projected on their first
principal component and resized back (our sign convention: cam.eigen_projection's).
aug_smooth: cam.py's test-time augmentation. Differentiable in the parameters (second
derivatives of the network).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam, chunks, maps, targets

Path = tuple[str, ...]


def _implicit_bias(module: nn.Module) -> jax.Array | None:
  """The bias a layer adds per channel (None: it adds none)."""
  params = module.variables.get("params", {})
  if isinstance(module, nn.Conv):
    return params.get("bias")
  if not (module.use_bias or module.use_scale):  # an affine-free BatchNorm: torch's bias None
    return None
  stats = module.variables["batch_stats"]
  scale = params.get("scale", 1.0) / jnp.sqrt(stats["var"] + module.epsilon)
  return params.get("bias", 0.0) - stats["mean"] * scale


def _bias_layer(context, out) -> bool:
  return (context.method_name == "__call__" and isinstance(context.module, (nn.Conv, nn.BatchNorm))
          and getattr(out, "ndim", 0) == 4 and _implicit_bias(context.module) is not None)


def _with_bias_deltas(forward, x: jax.Array, deltas: dict[Path, jax.Array] | None):
  """forward(x) with deltas[path] added to each bias layer's output -> (outputs, {path:
  bias}); deltas=None records each bias layer's output shape and dtype instead."""
  found: dict[Path, Any] = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if _bias_layer(context, out):
      path = tuple(context.module.path)
      if deltas is None:
        found[path] = jax.ShapeDtypeStruct(out.shape, out.dtype)
      else:
        found[path] = _implicit_bias(context.module)
        out = out + deltas[path]
    return out

  with nn.intercept_methods(interceptor):
    outputs = forward(x)
  return outputs, found


def _channel_sum(part: jax.Array) -> jax.Array:
  """(B, h, w, C) -> (B, h, w): each channel min-max normalized, then summed."""
  return jnp.sum(maps.normalize(part, axes=(1, 2)), axis=-1)


def _part_maps(x, x_grad, biases, bias_grads) -> jax.Array:
  """(B, 3 + L, H, W): the input's color channels, then each layer's channel sum."""
  size = x.shape[1:3]
  wide = maps.at_least_float32
  parts = [jnp.moveaxis(maps.normalize(jnp.abs(wide(x_grad) * wide(x)), axes=(1, 2)), -1, 1)]
  for path, bias in biases.items():
    summed = _channel_sum(jnp.abs(wide(bias) * wide(bias_grads[path])))
    parts.append((maps.upsample(summed, size) if summed.shape[1:] != size else summed)[:, None])
  return jnp.concatenate(parts, axis=1)


def _eigen_smooth(parts: jax.Array) -> jax.Array:
  """pytorch-grad-cam's FullGrad eigen_smooth: (B, P, H, W) -> (B, H, W)."""
  height, width = parts.shape[-2:]
  small = maps.upsample(maps.normalize(parts), (height // 8, width // 8))
  projected = cam.eigen_projection(jnp.moveaxis(small, 1, -1))
  return maps.upsample(maps.normalize(projected), (height, width))


def full_grad(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
              eigen_smooth: bool = False, aug_smooth: bool = False,
              target_chunk: int = 16) -> jax.Array:
  """FullGrad maps (B, H, W), or (B, K, H, W) for several targets, in [0, 1].

  target as grad_cam (one forward pass, one backward pass per target, `target_chunk` at a
  time); no layer argument: every convolution with a bias and every BatchNorm counts.
  """
  images = x.shape[0]
  if aug_smooth:
    x = cam.augment(x)
  forward, target = targets.scores_fn(model, variables, target)
  shapes = jax.eval_shape(lambda z: _with_bias_deltas(forward, z, None)[1],
                          jax.ShapeDtypeStruct(x.shape, x.dtype))
  zeros = {path: jnp.zeros(s.shape, s.dtype) for path, s in shapes.items()}
  outputs, pull, biases = jax.vjp(lambda z, d: _with_bias_deltas(forward, z, d), x, zeros,
                                  has_aux=True)
  resolved = targets.resolve(target, outputs, tile=cam.AUGMENTATIONS if aug_smooth else 1)

  def per_target(k):
    x_grad, bias_grads = pull(resolved.cotangent(outputs, k))
    parts = _part_maps(x, x_grad, biases, bias_grads)
    return maps.normalize(_eigen_smooth(parts) if eigen_smooth else jnp.sum(parts, axis=1))

  result = jnp.moveaxis(chunks.map_targets(per_target, resolved.num, target_chunk, x), 0, 1)
  if aug_smooth:
    result = cam.deaugment(result, images)
  return result if resolved.multi else result[:, 0]

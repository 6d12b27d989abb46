"""The machinery every class-activation-map method shares.

A CAM method is a `weigh(activations, gradients) -> weighted activations` rule, all
(B, h, w, C); its map is ReLU(sum over C), or with eigen_smooth the projection on the
first principal component (pytorch-grad-cam's `eigen_smooth`). Around that rule:
  - one forward pass, then one pull-back per target (vmap over cotangents, chunked),
    so several classes or all classes cost one forward plus head-only backward passes;
    the scores are `targets.scores_fn`'s, so every target form works, a neuron target
    (above every CAM layer) included;
  - several layers, or a `size`: each map min-max normalized, resized to `size`
    (default: the finest layer), averaged and normalized again, as pytorch-grad-cam
    combines them (size=(H, W) of the input gives its exact output);
  - aug_smooth: pytorch-grad-cam's test-time augmentation (horizontal flip × intensity
    0.9/1/1.1), the six variants batched into one pass, maps normalized (at `size`),
    un-flipped and averaged.
Rules that need more: a rule per layer (a mapping layer -> rule), a reduction other than
the channel sum (`reduce`, e.g. a kernel-PCA projection), and second-order gradients
(`curvature`: the rule sees g + curvature · (d²S/dA²)·A, ShapleyCAM's Taylor term).
"""
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import chunks, layer_gradients, maps, targets

Weigh = Callable[[jax.Array, jax.Array], jax.Array]
Reduce = Callable[[jax.Array], jax.Array]  # (B, h, w, C) weighted activations -> (B, h, w)
_TTA_FACTORS = (0.9, 1.0, 1.1)
AUGMENTATIONS = 2 * len(_TTA_FACTORS)


def augment(x: jax.Array) -> jax.Array:
  """aug_smooth's variants of (B, H, W, C) images, stacked: (AUGMENTATIONS·B, H, W, C), the
  variant (flip, factor) for flip in (no, yes) for factor in 0.9/1/1.1, image-minor."""
  return jnp.concatenate([f * v for v in (x, x[:, :, ::-1]) for f in _TTA_FACTORS])


def deaugment(cam: jax.Array, images: int) -> jax.Array:
  """Maps (AUGMENTATIONS·B, ..., h, w) of `augment`ed images -> (B, ..., h, w): each map
  normalized, un-flipped, and the variants averaged."""
  cam = maps.normalize(cam).reshape(2, len(_TTA_FACTORS), images, *cam.shape[1:])
  return jnp.mean(jnp.concatenate([cam[0], cam[1, ..., ::-1]]), axis=0)


def eigen_projection(weighted: jax.Array) -> jax.Array:
  """(B, h, w, C) -> (B, h, w): centerd activations on their first principal direction.

  Sign: SVD leaves it arbitrary; we orient the direction so its loadings sum to >= 0,
  i.e. the projection correlates positively with the centered channel sum (for
  non-negative activations the map then follows the activations, not their inverse; for
  gradient-weighted ones, the class evidence). pytorch-grad-cam keeps LAPACK's sign, so
  its Eigen-CAM and eigen_smooth maps can come out negated.
  """
  b, h, w, c = weighted.shape
  flat = weighted.reshape(b, h * w, c)
  flat = flat - jnp.mean(flat, axis=1, keepdims=True)
  _, _, vt = jnp.linalg.svd(flat, full_matrices=False)
  direction = vt[:, 0, :]  # (B, C)
  direction = direction * jnp.where(jnp.sum(direction, -1, keepdims=True) < 0, -1.0, 1.0)
  return jnp.einsum("bpc,bc->bp", flat, direction).reshape(b, h, w)


def _reduce(weighted: jax.Array, eigen_smooth: bool, reduce: Reduce | None) -> jax.Array:
  if reduce is None:
    reduce = eigen_projection if eigen_smooth else lambda w: jnp.sum(w, axis=-1)
  return jax.nn.relu(reduce(weighted))  # (B, h, w)


def combine_layers(cams: Sequence[jax.Array], size: Sequence[int] | None) -> jax.Array:
  """One layer and no size: its map unchanged. Else: normalize, resize, mean, normalize."""
  if len(cams) == 1 and size is None:
    return cams[0]
  if size is None:
    size = max((c.shape[-2:] for c in cams), key=lambda s: s[0] * s[1])
  resized = [maps.upsample(maps.normalize(c), size) if tuple(c.shape[-2:]) != tuple(size)
             else maps.normalize(c) for c in cams]
  return maps.normalize(jnp.mean(jnp.stack(resized), axis=0))


def _forward(model: nn.Module, variables, x: jax.Array, layers: Sequence[str], target: Any,
             tile: int, uses_gradients: bool, curvature: float):
  """One forward pass to the target's scores (`targets.scores_fn`: a neuron target scores
  its layer's channels): ({layer: activation}, the target bound to the scores, gradients(k)
  -> {layer: the gradient of target k, plus curvature × its Hessian times the activation})."""
  forward, target = targets.scores_fn(model, variables, target)
  if uses_gradients and not curvature:
    outputs, acts, pull = layer_gradients.layer_vjp(model, variables, x, layers, forward)
    resolved = targets.resolve(target, outputs, tile=tile)
    return acts, resolved, lambda k: pull(resolved.cotangent(outputs, k))
  outputs, acts = layer_gradients.run_tapped(forward, x, layers)
  resolved = targets.resolve(target, outputs, tile=tile)

  def curved(k):
    score = lambda out: jnp.sum(resolved.scores(out)[:, k])  # noqa: E731
    pairs = {name: layer_gradients.layer_hvp(forward, x, name, score, acts[name])
             for name in layers}
    return {name: g + curvature * hv for name, (g, hv) in pairs.items()}

  return acts, resolved, curved


def class_activation_maps(model: nn.Module, variables, x: jax.Array,
                          layer: layer_gradients.Layers, target: Any,
                          weigh: Weigh | Mapping[str, Weigh], *, uses_gradients: bool = True,
                          curvature: float = 0.0, reduce: Reduce | None = None,
                          eigen_smooth: bool = False, aug_smooth: bool = False,
                          size: Sequence[int] | None = None, target_chunk: int = 64) -> jax.Array:
  """Maps (B, h, w), or (B, K, h, w) for several targets; see the module docstring.

  weigh: one rule, or {layer: rule} for the resolved layers. reduce: replaces the channel
  sum (and eigen_smooth). curvature != 0: gradients plus curvature × Hessian·activations.
  """
  layers = layer_gradients.resolve_layers(model, variables, x, layer)
  targets.check_neuron_above(model, variables, x, target, layers, "a CAM")
  rules = weigh if isinstance(weigh, Mapping) else dict.fromkeys(layers, weigh)
  images = x.shape[0]
  tile = AUGMENTATIONS if aug_smooth else 1
  if aug_smooth:
    x = augment(x)
  acts, resolved, gradients = _forward(model, variables, x, layers, target, tile,
                                       uses_gradients, curvature)

  def per_target(k):  # -> [ (B, h_l, w_l) per layer ], at least float32 (bf16 models)
    grads = gradients(k) if uses_gradients else {}
    wide_acts, grads = jax.tree.map(maps.at_least_float32, (acts, grads))
    return [_reduce(rules[name](wide_acts[name], grads.get(name)), eigen_smooth, reduce)
            for name in layers]

  if not uses_gradients:  # class-agnostic (Eigen-CAM): one map serves every target
    per_layer = [jnp.broadcast_to(c[None], (resolved.num, *c.shape)) for c in per_target(0)]
  else:
    per_layer = chunks.map_targets(per_target, resolved.num, target_chunk, x)
  cam = combine_layers([jnp.moveaxis(c, 0, 1) for c in per_layer], size)  # (B·tile, K, h, w)
  if aug_smooth:
    cam = deaugment(cam, images)
  return cam if resolved.multi else cam[:, 0]

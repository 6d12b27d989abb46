"""What an explanation is *for*: the `target=` argument of every explainer.

Forms (B images, N outputs):
  None                  top-1 class of each image                       -> maps (B, ...)
  int                   that class for every image                      -> (B, ...)
  array (B,)            one class per image (numpy / jax, integer)      -> (B, ...)
  list/tuple of ints    these K classes for every image                 -> (B, K, ...)
  array (B, K)          K classes per image                             -> (B, K, ...)
  top_k(k)              the k best classes of each image                -> (B, k, ...)
  'all'                 every output (CAM for every class)              -> (B, N, ...)
  callable              score_fn(outputs (B, N)) -> (B,) score per image -> (B, ...),
                        or (B, K) -> (B, K, ...): a regression output, a class mix.
  neuron(layer, channel[, position])  a unit of an inner layer (Captum's Neuron* methods):
                        the layer's channel summed over space, or its value at (y, x);
                        channel an int or per-image ints (B,)             -> (B, ...)
Explainers get their forward pass from `scores_fn`, which makes a neuron target an
ordinary class target of the layer's (B, C) channel scores.
Several targets share one forward pass: the explainers pull back one cotangent per
target through a single `jax.vjp` (vmap over cotangents).
A callable must treat rows independently (SmoothGrad / IG feed it noisy or scaled copies).
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import chunks
from cnnviz_jax.models import taps

FORMS = ("None (top-1)", "an int", "an integer array (B,) or (B, K)", "a list of ints",
         "top_k(k)", "'all'", "a callable score_fn(outputs) -> (B,) or (B, K)",
         "neuron(layer, channel[, position])")


@dataclasses.dataclass(frozen=True)
class TopK:
  k: int


def top_k(k: int) -> TopK:
  """Target: the k highest-scoring classes of each image (maps (B, k, ...))."""
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"top_k needs an int k >= 1, got {k!r}")
  return TopK(int(k))


@dataclasses.dataclass(frozen=True)
class Neuron:
  layer: str
  channel: Any  # int or (B,) ints
  position: tuple[int, int] | None = None


def neuron(layer: str, channel, position: tuple[int, int] | None = None) -> Neuron:
  """Target: channel `channel` of layer `layer` (a `cj.models.layer_names` name), summed
  over space, or its value at position=(y, x)."""
  if not isinstance(layer, str):
    raise ValueError(f"neuron needs a layer name, got {layer!r}")
  if position is not None and len(position) != 2:
    raise ValueError(f"neuron position must be (y, x), got {position!r}")
  return Neuron(layer, channel, None if position is None else tuple(position))


def scores_fn(model, variables, target: Any, *, train: bool = False,
              **apply_kwargs) -> tuple[Callable[[jax.Array], jax.Array], Any]:
  """(forward z -> (B, N) scores, the target for `resolve` on them).

  A class target: the model's outputs and the target unchanged. A neuron target: the
  layer's (B, C) channel sums (or values at its position), and its channel as the class.
  """
  if not isinstance(target, Neuron):
    return lambda z: model.apply(variables, z, train=train, **apply_kwargs), target

  def channel_scores(z):
    acts = taps.apply_with_taps(model, variables, z, [target.layer], train=train,
                                **apply_kwargs)[1][target.layer]
    if target.position is None:
      return jnp.sum(acts, axis=(1, 2))
    return acts[:, target.position[0], target.position[1], :]

  return channel_scores, target.channel


def check_neuron_above(model, variables, x, target: Any, layers, what: str) -> None:
  """A neuron target of a method that differentiates at `layers` must lie above each of
  them: below, its score ignores the layer; at it, the method's tap (which wraps the
  neuron's, `taps.tapping`) would perturb the layer after the neuron was read."""
  if not isinstance(target, Neuron):
    return
  order = list(taps.check_layers(model, variables, jax.ShapeDtypeStruct(x.shape, x.dtype),
                                 [target.layer]))  # every layer, in forward order
  low = [name for name in layers if order.index(target.layer) <= order.index(name)]
  if low:
    raise ValueError(f"a neuron target of {what} must lie above the layer: neuron at "
                     f"{target.layer!r}, layer {', '.join(map(repr, low))} (forward order: "
                     f"{', '.join(order)})")


@dataclasses.dataclass(frozen=True)
class Resolved:
  """A target bound to a batch: class ids (B, K), or a score function."""
  classes: jax.Array | None  # (B, K) int32
  score_fn: Callable | None
  multi: bool  # the maps keep a K axis
  num: int  # K

  def cotangent(self, outputs: jax.Array, k) -> jax.Array:
    """d(score of target k) / d outputs, (B, N); k may be traced (vmap over targets)."""
    if self.classes is not None:
      return jax.nn.one_hot(self.classes[:, k], outputs.shape[-1], dtype=outputs.dtype)
    scores, pull = jax.vjp(self.score_fn, outputs)
    if scores.ndim == 1:
      return pull(jnp.ones_like(scores))[0]
    return pull(jnp.broadcast_to(jax.nn.one_hot(k, scores.shape[-1], dtype=scores.dtype),
                                 scores.shape))[0]

  def scores(self, outputs: jax.Array) -> jax.Array:
    """(B, K) scores of every target, for perturbation methods (Score-CAM)."""
    if self.classes is not None:
      return jnp.take_along_axis(outputs, self.classes, axis=1)
    scores = self.score_fn(outputs)
    return scores[:, None] if scores.ndim == 1 else scores

  def repeat(self, n: int) -> "Resolved":
    """The same targets for a batch whose rows are n consecutive copies of each image."""
    if self.classes is None:
      return self
    return dataclasses.replace(self, classes=jnp.repeat(self.classes, n, axis=0))


def _is_int(t) -> bool:
  return isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))


def _check_range(classes, num_outputs: int) -> None:
  try:
    c = np.asarray(classes)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return  # values unknown under jit: the caller vouches for them
  if c.size and (c.min() < 0 or c.max() >= num_outputs):
    bad = c[(c < 0) | (c >= num_outputs)]
    raise ValueError(f"target class(es) {bad.tolist()[:5]} out of range: the model has "
                     f"{num_outputs} outputs (0…{num_outputs - 1})")


def resolve(target: Any, outputs: jax.Array, tile: int = 1) -> Resolved:
  """Binds `target` to a batch whose model outputs are `outputs` (B, N).

  tile: the batch is `tile` stacked copies of the user's images (test-time
  augmentation); per-image class arrays are tiled to match, top-1 stays per row.
  """
  if outputs.ndim != 2:
    raise ValueError(f"target needs model outputs of shape (B, N), got {outputs.shape}; "
                     "use a callable target for other outputs")
  batch, num = outputs.shape
  images = batch // tile
  if isinstance(target, Neuron):
    raise ValueError("a neuron target needs the layer's scores: get the forward pass from "
                     "targets.scores_fn(model, variables, target)")
  if target is None:
    return Resolved(jnp.argmax(outputs, axis=-1)[:, None].astype(jnp.int32), None, False, 1)
  if _is_int(target):
    _check_range(target, num)
    return Resolved(jnp.full((batch, 1), int(target), jnp.int32), None, False, 1)
  if isinstance(target, str):
    if target != "all":
      raise ValueError(f"unknown target {target!r}; valid forms: {', '.join(FORMS)}")
    return Resolved(jnp.broadcast_to(jnp.arange(num, dtype=jnp.int32), (batch, num)),
                    None, True, num)
  if isinstance(target, TopK):
    if target.k > num:
      raise ValueError(f"top_k({target.k}) but the model has only {num} outputs")
    return Resolved(jax.lax.top_k(outputs, target.k)[1].astype(jnp.int32), None, True,
                    target.k)
  if isinstance(target, (list, tuple)):
    if not target or not all(_is_int(t) for t in target):
      raise ValueError(f"a list target must be a non-empty list of ints, got {target!r}")
    _check_range(target, num)
    classes = jnp.broadcast_to(jnp.asarray(target, jnp.int32), (batch, len(target)))
    return Resolved(classes, None, True, len(target))
  if isinstance(target, (np.ndarray, jax.Array)):
    if not jnp.issubdtype(target.dtype, jnp.integer):
      raise ValueError(f"a target array must hold integer class ids, got dtype {target.dtype}")
    if target.ndim not in (1, 2) or target.shape[0] != images:
      raise ValueError(f"a target array must have shape (B,) or (B, K) with B={images} "
                       f"images, got {target.shape}")
    _check_range(target, num)
    classes = jnp.asarray(target, jnp.int32)
    classes = jnp.tile(classes[:, None] if classes.ndim == 1 else classes, (tile, 1))
    return Resolved(classes, None, target.ndim == 2, classes.shape[1])
  if callable(target):
    out = jax.eval_shape(target, outputs)
    if out.ndim not in (1, 2) or out.shape[0] != batch:
      raise ValueError(f"a target function must return (B,) or (B, K) scores for outputs "
                       f"{outputs.shape}, got shape {out.shape}")
    return Resolved(None, target, out.ndim == 2, 1 if out.ndim == 1 else out.shape[1])
  raise TypeError(f"unsupported target {target!r} of type {type(target).__name__}; "
                  f"valid forms: {', '.join(FORMS)}")


def pull_targets(pull: Callable, outputs: jax.Array, resolved: Resolved) -> jax.Array:
  """Pull every target's cotangent back through one vjp: (B, K, ...) (vmap over targets)."""
  grads = chunks.map_targets(lambda k: pull(resolved.cotangent(outputs, k))[0], resolved.num,
                             None, outputs)
  return jnp.moveaxis(grads, 0, 1)

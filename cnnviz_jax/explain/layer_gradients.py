"""Activations at named layers and the pull-back of output cotangents to them.

The gradient with respect to a layer comes from a zero perturbation added to that
layer's output (`taps.tapping(add=)`): `jax.vjp` with respect to it runs
one forward pass and back-propagates only from the layer upward, never through the
layers below (pytorch-grad-cam back-propagates through the whole network).
"""
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.models import taps

Layers = str | Sequence[str] | None


def resolve_layers(model: nn.Module, variables, x: jax.Array, layer: Layers) -> list[str]:
  """layer name(s) -> list; None -> the last spatial layer. Unknown names list the valid."""
  shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
  valid = taps.layer_names(model, variables, shape)
  if not valid:
    raise ValueError(f"{type(model).__name__} has no spatial layer to explain")
  if layer is None:
    return [valid[-1]]
  layers = [layer] if isinstance(layer, str) else (
      list(layer) if isinstance(layer, (list, tuple)) else [])
  if not layers or not all(isinstance(name, str) for name in layers):
    raise ValueError(f"layer must be a layer name or a non-empty list of names, got {layer!r}; "
                     f"valid layers: {', '.join(valid)}")
  taps.check_layers(model, variables, shape, layers)
  return layers


def run_tapped(forward: Callable, x: jax.Array, layers: Sequence[str],
               deltas: dict[str, jax.Array] | None = None) -> tuple[jax.Array, dict]:
  """forward(x) with deltas added to the outputs of `layers` -> (outputs, {layer: its
  activation}) (layers the pass never calls are missing)."""
  with taps.tapping(layers, add=deltas) as recorded:
    outputs = forward(x)
  return outputs, {name: recorded[name] for name in layers if name in recorded}


def _model_forward(model: nn.Module, variables, forward: Callable | None) -> Callable:
  return forward or (lambda z: model.apply(variables, z, train=False))


def layer_vjp(model: nn.Module, variables, x: jax.Array, layers: Sequence[str],
              forward: Callable | None = None
              ) -> tuple[jax.Array, dict[str, jax.Array], Callable]:
  """One forward pass: (outputs (B, N), {layer: activation (B, h, w, C)}, pullback).

  pullback(cotangent (B, N)) -> {layer: d(cotangent · outputs) / d activation}.
  forward: z -> outputs, e.g. `targets.scores_fn`'s (default: the model's outputs).
  """
  forward = _model_forward(model, variables, forward)
  spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
  shapes = jax.eval_shape(lambda z: run_tapped(forward, z, layers)[1], spec)
  if len(shapes) < len(layers):
    taps.check_layers(model, variables, spec, layers)  # raises, naming the valid layers
  zeros = {name: jnp.zeros(s.shape, s.dtype) for name, s in shapes.items()}  # tap dtypes
  outputs, pull, acts = jax.vjp(lambda deltas: run_tapped(forward, x, layers, deltas), zeros,
                                has_aux=True)
  return outputs, acts, lambda cotangent: pull(cotangent)[0]


def layer_hvp(forward: Callable, x: jax.Array, layer: str,
              score: Callable[[jax.Array], jax.Array], tangent: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
  """(dS/dA, (d²S/dA²)·tangent) at one layer, S = score(forward(x)) a scalar.

  Reverse-over-reverse: the vjp of the layer gradient, pulled back along `tangent` (the
  Hessian is symmetric), as torch's autograd.grad(grad, A, grad_outputs=tangent); never
  the Hessian itself. (Forward-over-reverse would be cheaper, but max-pooling's custom
  VJP has no forward-mode rule.) The derivative is the total one: layers above see the
  perturbed activation.
  """
  def gradient(delta):
    return jax.grad(lambda d: score(run_tapped(forward, x, [layer], {layer: d})[0]))(delta)

  grad, pull = jax.vjp(gradient, jnp.zeros_like(tangent))
  return grad, pull(tangent)[0]

"""Guided backpropagation and deconvnet: modified activation gradients via custom_vjp.

Every model in the registry has an `act` attribute, so `model.clone(act=guided(model.act))`
swaps every activation (backbone and head) for one with the same forward value and a
modified backward, with the parameters unchanged:
  guided(act):  dx = act's own vjp of ReLU(dy)    (ReLU: 1[x > 0] · 1[dy > 0] · dy)
  deconv(act):  dx = ReLU(dy)                      (the activation's input is ignored)
For ReLU these are Springenberg's and Zeiler's rules, and what Captum's GuidedBackprop /
Deconvolution compute by hooking every nn.ReLU. For another activation (e.g.
selu) the guided rule keeps that activation's own local slope.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import targets as targets_lib
from cnnviz_jax.models import taps


@functools.lru_cache(maxsize=None)  # one function per act: cloned models stay equal (jit cache)
def guided(act: Callable = nn.relu) -> Callable:
  """`act` with the guided-backpropagation backward pass."""
  @jax.custom_vjp
  def f(x):
    return act(x)

  def fwd(x):
    return act(x), x

  def bwd(x, dy):
    return jax.vjp(act, x)[1](jax.nn.relu(dy))

  f.defvjp(fwd, bwd)
  return f


@functools.lru_cache(maxsize=None)
def deconv(act: Callable = nn.relu) -> Callable:
  """`act` with the deconvnet backward pass (ReLU of the incoming gradient)."""
  @jax.custom_vjp
  def f(x):
    return act(x)

  f.defvjp(lambda x: (act(x), None), lambda _, dy: (jax.nn.relu(dy),))
  return f


guided_relu = guided(nn.relu)


def _neuron_score(index: Sequence[Any]) -> Callable:
  """Score of one neuron (y, x, c) or one channel (c,) at `layer`: (acts) -> (B,)."""
  def score(acts: jax.Array) -> jax.Array:
    b = jnp.arange(acts.shape[0])
    if len(index) == 1:  # a whole channel: its summed activation
      return jnp.sum(acts[b, :, :, jnp.asarray(index[0])], axis=(1, 2))
    y, x, c = (jnp.broadcast_to(jnp.asarray(i), b.shape) for i in index)
    return acts[b, y, x, c]
  return score


def modified_gradient(model: nn.Module, variables, x: jax.Array, target: Any, rule: Callable,
                      neuron: Sequence[Any] | None = None,
                      channel: Sequence[Any] | None = None) -> jax.Array:
  """Input gradient of the target through `model.clone(act=rule(model.act))`."""
  if not hasattr(model, "act"):
    raise ValueError(f"{type(model).__name__} has no `act` attribute to swap; give the "
                     "model an activation attribute used by every layer")
  if neuron is not None and channel is not None:
    raise ValueError("give either neuron=(layer, y, x, channel) or channel=(layer, channel)")
  spec = neuron if neuron is not None else channel
  if spec is not None:
    if target is not None:
      raise ValueError("target and neuron/channel are exclusive: the unit is the target")
    expected = 4 if neuron is not None else 2
    if len(spec) != expected or not isinstance(spec[0], str):
      raise ValueError("neuron must be (layer, y, x, channel) and channel (layer, channel), "
                       f"got {spec!r}")
    taps.check_layers(model, variables, jax.ShapeDtypeStruct(x.shape, x.dtype), [spec[0]])
  modified = model.clone(act=rule(model.act))

  if spec is not None:  # a unit of a tapped layer: back-propagate from there
    layer, score = spec[0], _neuron_score(spec[1:])

    def layer_output(z):
      return taps.apply_with_taps(modified, variables, z, [layer])[1][layer]

    acts, pull = jax.vjp(layer_output, x)
    scores, pull_score = jax.vjp(score, acts)
    return pull(pull_score(jnp.ones_like(scores))[0])[0]
  outputs, pull = jax.vjp(lambda z: modified.apply(variables, z, train=False), x)
  resolved = targets_lib.resolve(target, outputs)
  grads = targets_lib.pull_targets(pull, outputs, resolved)  # (B, K, H, W, C)
  return grads if resolved.multi else grads[:, 0]


def guided_backprop(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
                    neuron=None, channel=None) -> jax.Array:
  """Guided backpropagation: (B, H, W, C), or (B, K, H, W, C) for several targets.

  Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR
  workshop 2015. arXiv:1412.6806. neuron=(layer, y, x, channel) explains one unit of a
  tapped layer (seeds 000/004), channel=(layer, channel) a whole feature map (summed);
  the indices may be per-image arrays (B,).
  """
  return modified_gradient(model, variables, x, target, guided, neuron, channel)


def deconvnet(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
              neuron=None, channel=None) -> jax.Array:
  """Deconvnet attribution: (B, H, W, C), or (B, K, H, W, C) for several targets.

  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
  arXiv:1311.2901. Same targets and neuron/channel options as `guided_backprop`.
  """
  return modified_gradient(model, variables, x, target, deconv, neuron, channel)

"""Guided backpropagation and deconvnet: modified activation gradients via custom_vjp.

Every model in the registry has an `act` attribute (and a `max_pool` one where it max-pools),
so `swap(model, guided)` = `model.clone(act=guided(model.act))` swaps every activation
(backbone and head) for one with the same forward value and a modified backward, with the
parameters unchanged. DeepLIFT (rescale.py) and LRP (lrp_rules.py) use the same swap:
  guided(act):  dx = act's own vjp of ReLU(dy)    (ReLU: 1[x > 0] · 1[dy > 0] · dy)
  deconv(act):  dx = ReLU(dy)                      (the activation's input is ignored)
For ReLU these are Springenberg's and Zeiler's rules, and what Captum's GuidedBackprop /
Deconvolution compute by hooking every nn.ReLU. For another activation (e.g.
selu) the guided rule keeps that activation's own local slope.
"""
import dataclasses
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


def has_field(model: nn.Module, name: str) -> bool:
  """Whether `name` is a dataclass field of the model, which `clone` can replace (a class
  attribute of the same name is not)."""
  return name in {field.name for field in dataclasses.fields(model)}


def swap(model: nn.Module, act_rule: Callable, pool_rule: Callable | None = None) -> nn.Module:
  """The model with every activation `act_rule(model.act)` and, given pool_rule, every max-pool
  `pool_rule(model.max_pool)`: same parameters, same forward values, the rules' backward.

  The one mechanism of the modified-gradient explainers: guided backpropagation and deconvnet
  (activation rules), DeepLIFT (rescale.py: activation and max-pool rules) and LRP
  (lrp_rules.py: an activation rule, plus its layer rules). A model without a `max_pool`
  attribute has no max-pool to swap.
  """
  if not has_field(model, "act"):
    raise ValueError(f"{type(model).__name__} has no `act` attribute to swap; give the "
                     "model an activation field (`act: Callable = nn.relu`) used by every "
                     "layer")
  swapped = {"act": act_rule(model.act)}
  if pool_rule is not None and hasattr(model, "max_pool"):
    swapped["max_pool"] = pool_rule(model.max_pool)
  return model.clone(**swapped)


def _unit_target(model: nn.Module, variables, x: jax.Array, neuron, channel):
  """The keyword forms neuron=(layer, y, x, channel) (per-image indices allowed) and
  channel=(layer, channel) -> (forward z -> (B, N) unit scores, their target)."""
  if neuron is not None and channel is not None:
    raise ValueError("give either neuron=(layer, y, x, channel) or channel=(layer, channel)")
  spec = neuron if neuron is not None else channel
  expected = 4 if neuron is not None else 2
  if len(spec) != expected or not isinstance(spec[0], str):
    raise ValueError("neuron must be (layer, y, x, channel) and channel (layer, channel), "
                     f"got {spec!r}")
  shapes = taps.check_layers(model, variables, jax.ShapeDtypeStruct(x.shape, x.dtype),
                             [spec[0]])
  if channel is not None:
    return targets_lib.scores_fn(model, variables, targets_lib.neuron(*spec))
  layer, (_, height, width, channels) = spec[0], shapes[spec[0]]
  y, w, c = (jnp.broadcast_to(jnp.asarray(i), (x.shape[0],)) for i in spec[1:])

  def unit_scores(z):  # the layer's units, flattened: the unit is a per-image class
    acts = taps.apply_with_taps(model, variables, z, [layer])[1][layer]
    return acts.reshape(acts.shape[0], height * width * channels)

  return unit_scores, ((y * width + w) * channels + c).astype(jnp.int32)


def modified_gradient(model: nn.Module, variables, x: jax.Array, target: Any, rule: Callable,
                      neuron: Sequence[Any] | None = None,
                      channel: Sequence[Any] | None = None) -> jax.Array:
  """Input gradient of the target through `swap(model, rule)`; any target form, including
  `targets.neuron(layer, channel)` (Captum's NeuronGuidedBackprop / NeuronDeconvolution)."""
  modified = swap(model, rule)
  if neuron is not None or channel is not None:
    if target is not None:
      raise ValueError("target and neuron/channel are exclusive: the unit is the target")
    forward, target = _unit_target(modified, variables, x, neuron, channel)
  else:
    forward, target = targets_lib.scores_fn(modified, variables, target)
  outputs, pull = jax.vjp(forward, x)
  resolved = targets_lib.resolve(target, outputs)
  grads = targets_lib.pull_targets(pull, outputs, resolved)  # (B, K, H, W, C)
  return grads if resolved.multi else grads[:, 0]


def guided_backprop(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
                    neuron=None, channel=None) -> jax.Array:
  """Guided backpropagation: (B, H, W, C), or (B, K, H, W, C) for several targets.

  Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR
  workshop 2015. arXiv:1412.6806. target=targets.neuron(layer, channel[, (y, x)]) explains a
  unit of a tapped layer (Captum's NeuronGuidedBackprop); the keyword forms
  neuron=(layer, y, x, channel) (indices may be per-image arrays (B,), as the report picks
  each image's unit) and channel=(layer, channel) (the feature map, summed) do the same.
  """
  return modified_gradient(model, variables, x, target, guided, neuron, channel)


def deconvnet(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
              neuron=None, channel=None) -> jax.Array:
  """Deconvnet attribution: (B, H, W, C), or (B, K, H, W, C) for several targets.

  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
  arXiv:1311.2901. Same targets and neuron/channel options as `guided_backprop` (a neuron
  target: Captum's NeuronDeconvolution).
  """
  return modified_gradient(model, variables, x, target, deconv, neuron, channel)

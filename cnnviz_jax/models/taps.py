"""Named tap points of a model: list them, read activations, add perturbations.

A model's tappable layers are its top-level submodules whose output is spatial
(B, h, w, C), in the order they are called. A flax method interceptor reads (and
optionally perturbs) their outputs, so no model needs tap-specific code and the
parameters are untouched: any registered or user-written linen model works.
"""
import contextlib
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _top_level_name(context) -> str | None:
  if context.method_name != "__call__":
    return None
  path = context.module.path
  return path[0] if len(path) == 1 else None


def apply_with_taps(model: nn.Module, variables, x, layers: Sequence[str] = (),
                    deltas: Mapping[str, jax.Array] | None = None, *, train: bool = False,
                    **apply_kwargs) -> tuple[Any, dict[str, jax.Array]]:
  """`model.apply(variables, x, train=train)` that also returns the outputs of `layers`.

  deltas: {layer: array} added to that layer's output before the rest of the
  network sees it. The gradient with respect to a zero delta is the gradient with
  respect to the activation, and it back-propagates only from the layer upward.
  Returns (whatever apply returns, {layer: activation (B, h, w, C)}).
  """
  wanted = set(layers) | set(deltas or ())
  taps: dict[str, jax.Array] = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    name = _top_level_name(context)
    if name in wanted:
      if deltas is not None and name in deltas:
        out = out + deltas[name]
      taps[name] = out
    return out

  with nn.intercept_methods(interceptor):
    result = model.apply(variables, x, train=train, **apply_kwargs)
  missing = wanted - set(taps)
  if missing:  # never called at the top level, so not a tappable layer: check_layers raises
    check_layers(model, variables, x, sorted(missing))
  return result, {name: taps[name] for name in layers}


@contextlib.contextmanager
def tapping(layers: Sequence[str] = (), replace: Mapping[str, jax.Array] | None = None,
            add: Mapping[str, jax.Array] | None = None):
  """Within it, any forward pass (e.g. the one `explain.targets.scores_fn` gives) records
  the outputs of `layers` in the yielded dict, and each layer of `replace` outputs the given
  array instead of its own. Nothing then reads what the layers below computed: under jit
  XLA drops it, so a replaced layer starts a pass from the layer upward. Each layer of `add`
  outputs its own output plus the given array (as apply_with_taps' deltas), recorded so.
  A forward pass that taps the model itself within it (a neuron target's `scores_fn`) sees
  a layer's own output, before this context replaces or adds to it (flax wraps the later
  interceptor innermost).
  """
  replace, add = dict(replace or {}), dict(add or {})
  recorded: dict[str, jax.Array] = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    name = _top_level_name(context)
    if name in replace:
      if replace[name].shape != out.shape:
        raise ValueError(f"layer {name!r} outputs {out.shape}, its replacement has "
                         f"{replace[name].shape}")
      out = replace[name].astype(out.dtype)
    if name in add:
      out = out + add[name]
    if name in layers:
      recorded[name] = out
    return out

  with nn.intercept_methods(interceptor):
    yield recorded


DEFAULT_INPUT_SIZE = 224  # for a model without an `input_size` attribute


def example_input(model: nn.Module, batch: int = 1) -> jax.ShapeDtypeStruct:
  """The input shape a model is traced with when none is given: (batch, S, S, 3) with S
  its `input_size` attribute (224 if it has none)."""
  size = getattr(model, "input_size", DEFAULT_INPUT_SIZE)
  return jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)


def call_order(model: nn.Module, variables, x=None) -> dict[tuple[str, ...], tuple]:
  """{submodule path: its output's shape} in the order the forward pass calls them (first
  call only; no compute). Parameter dicts lose creation order under jax transformations
  (keys are sorted), so forward order is asked of the model itself."""
  order: dict[tuple[str, ...], tuple | None] = {}

  def interceptor(next_fun, args, kwargs, context):
    path = tuple(context.module.path)
    if context.method_name != "__call__" or not path:
      return next_fun(*args, **kwargs)
    order.setdefault(path, None)  # on entry: a parent comes before its children
    out = next_fun(*args, **kwargs)
    if order[path] is None:
      order[path] = tuple(getattr(out, "shape", ()))
    return out

  def forward(v, inputs):
    with nn.intercept_methods(interceptor):
      return model.apply(v, inputs, train=False)

  jax.eval_shape(forward, variables, example_input(model) if x is None else x)
  return order


def layer_shapes(model: nn.Module, variables, x=None) -> dict[str, tuple[int, ...]]:
  """{layer: output shape} of every tappable layer, in forward order (no compute)."""
  return {path[0]: shape for path, shape in call_order(model, variables, x).items()
          if len(path) == 1 and len(shape) == 4}


def layer_names(model: nn.Module, variables, x=None) -> list[str]:
  """Tappable layers in forward order, e.g. 'stem', 'layer1'…'layer4' for ResNets.

  x (an array or ShapeDtypeStruct) sets the input shape; by default the model's
  `input_size` attribute (224 if it has none). Nothing is computed.
  """
  return list(layer_shapes(model, variables, x))


def check_layers(model: nn.Module, variables, x, layers: Sequence[str]
                 ) -> dict[str, tuple[int, ...]]:
  """`layer_shapes`, after a ValueError naming the valid layers if any of `layers` is not one."""
  shapes = layer_shapes(model, variables, x)
  unknown = [name for name in layers if name not in shapes]
  if unknown:
    raise ValueError(f"unknown layer(s) {unknown}; valid layers: {', '.join(shapes)}")
  return shapes


def head_inputs(model: nn.Module, variables, x) -> jax.Array:
  """What the top-level 'head' receives: the frozen-backbone features of `x`."""
  captured = {}

  def interceptor(next_fun, args, kwargs, context):
    if _top_level_name(context) == "head":
      captured["features"] = args[0]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    model.apply(variables, x, train=False)
  if "features" not in captured:
    raise ValueError(f"{type(model).__name__} has no top-level submodule named 'head'")
  return captured["features"]


def apply_head(model: nn.Module, variables, features, x_shape, *, train: bool = False,
               **apply_kwargs):
  """`model.apply` where the backbone is skipped and the head sees `features`.

  Top-level modules other than 'head' are not run (they return zeros of their
  output shape, which nothing uses), so a step costs the head alone — the
  feature-extraction mode of transfer learning.
  """
  shapes = layer_shapes(model, variables, jax.ShapeDtypeStruct(x_shape, jnp.float32))

  def interceptor(next_fun, args, kwargs, context):
    name = _top_level_name(context)
    if name == "head":
      return next_fun(features, *args[1:], **kwargs)
    if name in shapes:
      return jnp.zeros(shapes[name], features.dtype)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    return model.apply(variables, jnp.zeros(x_shape, features.dtype), train=train, **apply_kwargs)


def module_order(model: nn.Module, variables, x=None) -> list[tuple[str, ...]]:
  """Paths of every submodule in the order the forward pass calls them (no compute)."""
  return list(call_order(model, variables, x))


def parameter_layers(model: nn.Module, variables, x=None) -> list[str]:
  """Top-level submodules that hold parameters, in the order the forward calls them."""
  return [path[0] for path in call_order(model, variables, x)
          if len(path) == 1 and path[0] in variables["params"]]

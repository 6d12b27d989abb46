"""Receptive fields of any tappable layer, read off the traced forward pass.

Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019 (doi:10.23915/distill.00021). Unit `i` of a layer sees the input pixels
`[i * stride - padding, i * stride - padding + size)` along each spatial axis.

No model-specific code: the forward up to the tap is traced to a jaxpr (shapes only,
nothing computed) and (stride, first, last) input offsets are composed through every
`conv_general_dilated`, `reduce_window*`, `pad` and `slice`; where paths meet (residual
adds, concatenations) the union of their regions is kept, so misaligned branches are
exact too. `empirical_receptive_field` cross-checks from the gradient support of units.
"""
import functools
import math
from typing import Any, Mapping, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from cnnviz_jax.explain.guided import has_field
from cnnviz_jax.models import abstract_variables, taps


class ReceptiveField(NamedTuple):
  """Per spatial axis (h, w): unit i covers [i*stride - padding, i*stride - padding + size)."""
  size: tuple[int, ...]
  stride: tuple[int, ...]
  padding: tuple[int, ...]  # effective padding before the first input pixel (top, left)

  def region(self, position: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Input (start, stop) per axis under the unit at `position`, not clipped to the image."""
    return tuple((p * s - pad, p * s - pad + r)
                 for p, r, s, pad in zip(position, self.size, self.stride, self.padding))


class _Axis(NamedTuple):  # unit i of this tensor axis covers input [i*stride + lo, i*stride + hi]
  stride: int
  lo: int
  hi: int


class _Unsupported(NamedTuple):  # why the input-to-here dependence is not a window
  reason: str


_ELEMENTWISE = frozenset("""
abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp convert_element_type copy
copy_p cos cosh div eq erf erf_inv erfc exp exp2 expm1 floor ge gt imag integer_pow is_finite
le lgamma digamma log log1p logistic lt max min mul ne neg nextafter not or pow real
reduce_precision rem round rsqrt select_n sign sin sinh sqrt square sub tan tanh xor
stop_gradient optimization_barrier
""".split())
_REDUCTIONS = frozenset("reduce_sum reduce_max reduce_min reduce_prod reduce_and reduce_or "
                        "argmax argmin".split())


def _union(infos):
  """Meeting paths: the hull of their regions (Araujo et al., 'arbitrary graphs')."""
  infos = [i for i in infos if i is not None]
  for info in infos:
    if isinstance(info, _Unsupported):
      return info
  if not infos:
    return None
  out = dict(infos[0])
  for info in infos[1:]:
    for axis, a in info.items():
      b = out.get(axis)
      if b is not None and b.stride != a.stride:
        return _Unsupported(f"paths with strides {b.stride} and {a.stride} meet on axis {axis}")
      out[axis] = a if b is None else _Axis(a.stride, min(a.lo, b.lo), max(a.hi, b.hi))
  return out


def _window(info, axes, size, stride, pad_lo, dilation=None):
  """Output j reads inputs j*stride - pad_lo + t*dilation, t < size, along each axis."""
  out = {}
  for n, axis in enumerate(axes):
    a = info.get(axis)
    if a is None:
      continue
    span = (size[n] - 1) * (1 if dilation is None else dilation[n])
    out[axis] = _Axis(a.stride * stride[n], a.lo - pad_lo[n] * a.stride,
                      a.hi + (span - pad_lo[n]) * a.stride)
  return out


def _remap(info, mapping, name):
  """Moves axis info to new positions; None in `mapping` means the axis is gone (global)."""
  out = {}
  for axis, a in info.items():
    if mapping.get(axis) is None:
      return _Unsupported(f"'{name}' mixes all positions of spatial axis {axis} (a global "
                          "operation): the receptive field is the whole input")
    out[mapping[axis]] = a
  return out


def _reshape_map(in_shape, out_shape):
  """Axis map of a reshape that only adds/removes unit axes around the kept ones."""
  out_prefix = {math.prod(out_shape[:b]): b for b in range(len(out_shape))}
  mapping = {}
  for a, n in enumerate(in_shape):
    b = out_prefix.get(math.prod(in_shape[:a]))
    while b is not None and b < len(out_shape) and out_shape[b] == 1 and n != 1:
      b += 1
    mapping[a] = b if b is not None and b < len(out_shape) and out_shape[b] == n else None
  return mapping


def _call_body(eqn):
  """(jaxpr, consts) that a call-like equation (jit, custom_jvp_call, remat) runs, or None."""
  for value in eqn.params.values():
    inner = getattr(value, "jaxpr", value)
    if isinstance(inner, jcore.Jaxpr) and len(inner.invars) == len(eqn.invars):
      return inner, getattr(value, "consts", ())
  return None


def _shift(info, start, step):
  """Output j is input start + j*step (pad: start = -low padding; slice: its start)."""
  return {a: _Axis(x.stride * step[a], x.lo + int(start[a]) * x.stride,
                   x.hi + int(start[a]) * x.stride) for a, x in info.items()}


def _conv(eqn, ins, first, p):
  dn = p["dimension_numbers"]
  if ins[1] is not None:
    return [_Unsupported("a convolution kernel depends on the input")]
  if any(d != 1 for d in p["lhs_dilation"]):
    return [_Unsupported("transposed (input-dilated) convolutions are not supported")]
  spatial = dn.lhs_spec[2:]
  kernel = [eqn.invars[1].aval.shape[d] for d in dn.rhs_spec[2:]]
  win = _window(first, spatial, kernel, p["window_strides"], [lo for lo, _ in p["padding"]],
                p["rhs_dilation"])
  extra = set(first) - set(spatial)
  if extra:
    return [_Unsupported(f"a convolution mixes spatial axis {sorted(extra)} as features")]
  return [{dn.out_spec[2 + n]: win[a] for n, a in enumerate(spatial) if a in win}]


def _reduce_window(eqn, ins, first, p):
  if any(d != 1 for d in p["base_dilation"]):
    return [_Unsupported(f"'{eqn.primitive.name}' with base dilation is not supported")]
  axes = range(len(p["window_dimensions"]))
  return [_window(_union(ins), axes, p["window_dimensions"], p["window_strides"],
                  [lo for lo, _ in p["padding"]], p["window_dilation"])]


def _pad(eqn, ins, first, p):
  cfg = p["padding_config"]
  if any(cfg[a][2] for a in first):
    return [_Unsupported("interior padding of a spatial axis is not supported")]
  return [_shift(first, [-lo for lo, _, _ in cfg], [1] * len(cfg))]


def _slice(eqn, ins, first, p):
  return [_shift(first, p["start_indices"], p["strides"] or [1] * len(p["start_indices"]))]


def _broadcast(eqn, ins, first, p):
  in_shape, out_shape = eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape
  dims = p["broadcast_dimensions"]
  return [_remap(first, {a: dims[a] for a in range(len(dims))
                         if in_shape[a] == out_shape[dims[a]]}, eqn.primitive.name)]


def _reshape(eqn, ins, first, p):
  return [_remap(first, _reshape_map(eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape),
                 eqn.primitive.name)]


def _transpose(eqn, ins, first, p):
  return [_remap(first, {a: list(p["permutation"]).index(a) for a in first}, "transpose")]


def _reduction(eqn, ins, first, p):
  kept = [a for a in range(eqn.invars[0].aval.ndim) if a not in p["axes"]]
  return [_remap(first, {a: kept.index(a) for a in kept}, eqn.primitive.name)]


def _dot_general(eqn, ins, first, p):
  (lc, rc), (lb, rb) = p["dimension_numbers"]
  nl, nr = eqn.invars[0].aval.ndim, eqn.invars[1].aval.ndim
  lfree = [a for a in range(nl) if a not in lc and a not in lb]
  rfree = [a for a in range(nr) if a not in rc and a not in rb]
  lmap = {**{a: k for k, a in enumerate(lb)}, **{a: len(lb) + k for k, a in enumerate(lfree)}}
  rmap = {**{a: k for k, a in enumerate(rb)},
          **{a: len(lb) + len(lfree) + k for k, a in enumerate(rfree)}}
  return [_union([_remap(ins[0], lmap, "dot_general") if ins[0] else None,
                  _remap(ins[1], rmap, "dot_general") if ins[1] else None])]


def _concatenate(eqn, ins, first, p):
  info = _union(ins)
  if p["dimension"] in info:
    return [_Unsupported("concatenation along a spatial axis is not supported")]
  return [info]


def _elementwise(eqn, ins, first, p):
  shape = eqn.outvars[0].aval.shape
  if any(i and v.aval.shape != shape for i, v in zip(ins, eqn.invars)):
    return [_Unsupported(f"'{eqn.primitive.name}' broadcasts a spatial tensor")]
  return [_union(ins)]


# primitive name -> rule(eqn, ins, first input's info, params) -> the outputs' infos
_RULES = {"conv_general_dilated": _conv, "pad": _pad, "slice": _slice,
          "broadcast_in_dim": _broadcast, "reshape": _reshape, "squeeze": _reshape,
          "transpose": _transpose, "dot_general": _dot_general, "concatenate": _concatenate,
          **{name: _reduction for name in _REDUCTIONS},
          **{name: _elementwise for name in _ELEMENTWISE}}
_TAKES_NON_DATA_FIRST = _ELEMENTWISE | {"dot_general", "concatenate"}


def _rule(name: str):
  if name.startswith("reduce_window"):
    return _reduce_window
  return _RULES.get(name)


def _equation(eqn, ins: list) -> list:
  """The infos of one equation's outputs from its inputs' infos."""
  name = eqn.primitive.name
  first = ins[0] if ins else None
  if all(i is None for i in ins):
    return [None]
  if any(isinstance(i, _Unsupported) for i in ins):
    return [_union(ins)]
  if (body := _call_body(eqn)) is not None:  # jit, custom_jvp/vjp (relu), remat, calls
    return _propagate(body[0], ins)
  if first is None and name not in _TAKES_NON_DATA_FIRST:
    return [_Unsupported(f"'{name}' depends on the input through a non-data operand")]
  rule = _rule(name)
  if rule is None:
    return [_Unsupported(f"primitive '{name}' is not understood (supported: convolutions, "
                         "window reductions, pad, slice, reshapes and elementwise ops)")]
  return rule(eqn, ins, first, eqn.params)


def _propagate(jaxpr: jcore.Jaxpr, in_infos: list) -> list:
  env: dict[Any, Any] = dict(zip(jaxpr.invars, in_infos))
  get = lambda v: None if isinstance(v, jcore.Literal) else env.get(v)
  for eqn in jaxpr.eqns:
    outs = _equation(eqn, [get(v) for v in eqn.invars])
    outs = outs * len(eqn.outvars) if len(outs) == 1 else outs
    for v, info in zip(eqn.outvars, outs):
      env[v] = info
  return [get(v) for v in jaxpr.outvars]


def _abstract_inputs(model: nn.Module, variables, input_shape):
  x = (taps.example_input(model) if input_shape is None
       else jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
  if variables is None:  # only shapes are needed: nothing is initialized
    variables = abstract_variables(model, x)
  return variables, x


def _taps_jaxpr(model, layers, variables, x) -> jcore.ClosedJaxpr:
  """Forward up to `layers` as a jaxpr (inputs: variable leaves then x; one output each)."""
  layers = list(layers)  # apply_with_taps raises listing the valid layers for unknown ones
  return jax.make_jaxpr(lambda v, inputs: tuple(
      taps.apply_with_taps(model, v, inputs, layers)[1][name] for name in layers))(variables, x)


def receptive_fields(model: nn.Module, layers: Sequence[str] | None = None, variables=None, *,
                     input_shape: Sequence[int] | None = None) -> dict[str, ReceptiveField]:
  """{layer: receptive_field(...)} for `layers` (default: every tappable layer), one trace."""
  variables, x = _abstract_inputs(model, variables, input_shape)
  layers = taps.layer_names(model, variables, x) if layers is None else list(layers)
  closed = _taps_jaxpr(model, layers, variables, x)
  num_spatial = len(x.shape) - 2
  in_infos = [None] * (len(closed.jaxpr.invars) - 1)  # parameters: no dependence on x
  in_infos.append({a: _Axis(1, 0, 0) for a in range(1, 1 + num_spatial)})
  fields = {}
  for layer, info in zip(layers, _propagate(closed.jaxpr, in_infos)):
    if isinstance(info, _Unsupported) or not info:
      reason = info.reason if info else "it does not depend on the input"
      raise ValueError(f"cannot compute the receptive field of layer {layer!r}: {reason}")
    axes = sorted(info)
    fields[layer] = ReceptiveField(tuple(info[a].hi - info[a].lo + 1 for a in axes),
                                   tuple(info[a].stride for a in axes),
                                   tuple(-info[a].lo for a in axes))
  return fields


def receptive_field(model: nn.Module, layer: str, variables=None, *,
                    input_shape: Sequence[int] | None = None) -> ReceptiveField:
  """Analytic (size, stride, padding) per spatial axis of `layer`'s units.

  variables: real or abstract (only their shapes are used); None traces `model.init`.
  input_shape: NHWC shape to trace with (default (1, S, S, 3), S = `model.input_size`
  or 224). It matters only for TF-style 'SAME' padding whose amount depends on size.
  Raises ValueError listing valid layers for an unknown one, or naming the operation
  (e.g. a global pool) that makes the layer's dependence on the input not a window.
  Contract: static — Python ints from shapes alone, with no batch, no parameter values
  and nothing to jit, vmap, shard or differentiate.
  """
  return receptive_fields(model, [layer], variables, input_shape=input_shape)[layer]


# --- the empirical cross-check: gradient support of single units --------------------------

def _eval_with_avg_pool(jaxpr: jcore.Jaxpr, consts, *args, only: int | None = None):
  """Evaluates `jaxpr` with every max-pool replaced by an average pool of the same window
  (a reduce-window max, or a maximum of two arrays as in layers.window_max_pool).

  A max-pool routes gradient to one input of its window; the average reaches all of
  them, so the gradient support of a unit becomes its whole receptive field.
  only: the index of the one output wanted -> [that output]; the equations after it are not
  traced (an early tap's vjp traces its prefix of the network, not the whole of it).
  """
  env = dict(zip(jaxpr.constvars, consts)) | dict(zip(jaxpr.invars, args))
  read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
  outvars = jaxpr.outvars if only is None else [jaxpr.outvars[only]]
  for eqn in jaxpr.eqns:
    if only is not None and all(isinstance(v, jcore.Literal) or v in env for v in outvars):
      break
    invals = [read(v) for v in eqn.invars]
    p = eqn.params
    if eqn.primitive.name == "reduce_window_max":
      window = p["window_dimensions"]
      outs = [lax.reduce_window(invals[0], 0.0, lax.add, window, p["window_strides"], p["padding"],
                                p["base_dilation"], p["window_dilation"]) / math.prod(window)]
    elif eqn.primitive.name == "max" and not any(isinstance(v, jcore.Literal)
                                                 for v in eqn.invars):
      outs = [(invals[0] + invals[1]) / 2]  # a pool's maximum of slices (layers.window_max_pool)
    elif (body := _call_body(eqn)) is not None:  # jit, relu's custom_jvp, ...: plain gradient
      outs = _eval_with_avg_pool(*body, *invals)
    else:
      outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(p))
      outs = outs if eqn.primitive.multiple_results else [outs]
    env.update(zip(eqn.outvars, outs))
  return [read(v) for v in outvars]


def _identity(x):
  return x


def _positive_variables(variables):
  """Every path carries gradient: kernels 1/fan-in, BN mean 0 / var 1, other vectors 1."""
  def fill(path, leaf):
    key = getattr(path[-1], "key", None)
    if key == "mean":
      return jnp.zeros(leaf.shape, leaf.dtype)
    if len(leaf.shape) >= 2:
      return jnp.full(leaf.shape, 1.0 / math.prod(leaf.shape[:-1]), leaf.dtype)
    return jnp.ones(leaf.shape, leaf.dtype)
  return jax.tree_util.tree_map_with_path(fill, variables)


@functools.partial(jax.jit, static_argnums=0)
def _supports(closed: jcore.ClosedJaxpr, leaves, inputs, onehots):
  """onehots: per tap (P, h, w) unit masks -> per tap (P, H, W) bool gradient supports."""
  supports = []
  for k, masks in enumerate(onehots):  # one vjp per tap: its backward stops at the input
    out, pullback = jax.vjp(
        lambda x, k=k: _eval_with_avg_pool(closed.jaxpr, closed.consts, *leaves, x, only=k)[0],
        inputs)

    def one(mask, out=out, pullback=pullback):  # 1 on every channel of one unit of image 0
      ct = jnp.zeros_like(out).at[0].set(jnp.broadcast_to(mask[..., None], out.shape[1:]))
      return jnp.abs(pullback(ct)[0][0]).sum(-1) > 0

    supports.append(jax.vmap(one)(masks))
  return supports


def gradient_support(model: nn.Module, positions: Mapping[str, Sequence[Sequence[int]]],
                     variables=None, *, input_shape: Sequence[int] | None = None
                     ) -> dict[str, np.ndarray]:
  """{layer: (P, H, W) bool}: input pixels whose gradient reaches each listed unit.

  positions: {layer: [(i, j), ...]} units of image 0. Weights are replaced by positive
  constants, max-pools by average pools and the model's `act` by the identity, so every
  path carries gradient (a saturating activation such as ReLU6 would cut the paths whose
  positive sums pass 6; values in `variables` are not used). `act` is swapped only where
  it is a field of the model; an activation written inline must pass gradient for
  positive inputs. One trace and one batched backward for all units.
  """
  if has_field(model, "act"):
    model = model.clone(act=_identity)
  variables, x = _abstract_inputs(model, variables, input_shape)
  layers = list(positions)
  closed = _taps_jaxpr(model, layers, variables, x)
  leaves = jax.tree_util.tree_leaves(_positive_variables(variables))
  onehots = []
  for name, out in zip(layers, closed.jaxpr.outvars):
    masks = np.zeros((len(positions[name]),) + out.aval.shape[1:-1], np.float32)
    for row, pos in enumerate(positions[name]):
      masks[(row,) + tuple(pos)] = 1.0
    onehots.append(masks)
  supports = _supports(closed, leaves, jnp.ones(x.shape, x.dtype), onehots)
  return {name: np.asarray(m) for name, m in zip(layers, supports)}


def empirical_receptive_fields(model: nn.Module, layers: Sequence[str] | None = None,
                               variables=None, *, input_shape: Sequence[int] | None = None
                               ) -> dict[str, ReceptiveField]:
  """Receptive fields measured from gradient supports (cross-check of `receptive_field`).

  Along each axis: the first unit's support ends at size - padding - 1, the second's one
  stride later, and the last unit's starts at (n - 1) * stride - padding. Those three ends
  must lie inside the input (else ValueError: pass a larger input_shape), which needs an
  input about half the field's size, not the whole field.
  """
  variables, x = _abstract_inputs(model, variables, input_shape)
  shapes = taps.check_layers(model, variables, x, layers or ())
  layers = list(shapes) if layers is None else list(layers)
  units = {name: [(0, 0), (1, 1), tuple(n - 1 for n in shapes[name][1:-1])] for name in layers}
  masks = gradient_support(model, units, variables, input_shape=x.shape)
  fields = {}
  for name in layers:
    size, stride, padding = [], [], []
    for axis, n in enumerate(shapes[name][1:-1]):
      other = tuple(a for a in range(len(shapes[name]) - 2) if a != axis)
      first, second, last = (np.flatnonzero(m.any(axis=other)) for m in masks[name])
      if n < 2 or second[-1] == x.shape[1 + axis] - 1 or last[0] == 0:
        raise ValueError(f"input_shape {tuple(x.shape)} is too small to measure the receptive "
                         f"field of {name!r} along axis {axis}; pass a larger one")
      stride.append(int(second[-1] - first[-1]))
      padding.append(int((n - 1) * stride[-1] - last[0]))
      size.append(int(first[-1] + padding[-1] + 1))
    fields[name] = ReceptiveField(tuple(size), tuple(stride), tuple(padding))
  return fields

"""A model's initial variables, compiled for the single run they get, and their shapes."""

import flax
import jax

from cnnviz_jax.models import taps

# Init runs once, so its compile is most of what it costs. At XLA's optimization level 1 the
# parameters' random draws compile faster than at the default level and run as fast, with the
# same values; level 0 draws large models slowly (benchmarks/README.md, init_compile.py).
_ONE_OFF = {"xla_backend_optimization_level": 1}


def _init_traced(model, rng, x, paths):
  variables = model.init(rng, x)
  if paths is None:
    return variables
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  return [flat[p] for p in paths]  # XLA drops the draws of every other variable


_init = jax.jit(_init_traced, static_argnames=("model", "paths"), compiler_options=_ONE_OFF)


def initialize(model: flax.linen.Module, rng: jax.Array, x, paths=None):
  """`model.init(rng, x)`; x: an example batch or a jax.ShapeDtypeStruct.

  paths: only these flattened variable paths (tuples of names) -> {path: value}, the full
  init's values bit for bit, compiled without the rest (a new head under a pretrained
  backbone: InceptionResNetV2's takes 2.1 s instead of 29 s).
  """
  # Under a caller's jit (an explainer drawing fresh weights) its compile covers the init.
  traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves((rng, x)))
  init = _init_traced if traced else _init
  if paths is None:
    return init(model, rng, x, None)
  paths = tuple(tuple(p) for p in paths)
  return dict(zip(paths, init(model, rng, x, paths))) if paths else {}


def abstract_variables(model: flax.linen.Module, x=None):
  """`model.init`'s variables as jax.ShapeDtypeStructs: nothing is drawn or compiled.

  x: an example batch or a jax.ShapeDtypeStruct; None: taps.example_input(model).
  """
  x = taps.example_input(model) if x is None else x
  return jax.eval_shape(model.init, jax.random.key(0), x)

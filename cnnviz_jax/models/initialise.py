"""A model's initial variables, compiled for the single run they get."""
import functools

import flax
import jax

# Init runs once, so its compile is most of what it costs. At XLA's optimisation level 0 the
# parameters' random draws compile faster and run a little slower: trace, compile and run
# 2.0 -> 1.0 s (demo CNN), 30.9 -> 25.4 s (InceptionResNetV2) on 2 cores. The values differ
# from level 2's in the last bit of <1% of the elements.
_ONE_OFF = {"xla_backend_optimization_level": 0}


@functools.partial(jax.jit, static_argnames=("model", "paths"), compiler_options=_ONE_OFF)
def _init(model, rng, x, paths):
  variables = model.init(rng, x)
  if paths is None:
    return variables
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  return [flat[p] for p in paths]  # XLA drops the draws of every other variable


def initialise(model: flax.linen.Module, rng: jax.Array, x, paths=None):
  """`model.init(rng, x)`; x: an example batch or a jax.ShapeDtypeStruct.

  paths: only these flattened variable paths (tuples of names) -> {path: value}, the full
  init's values bit for bit, compiled without the rest (a new head under a pretrained
  backbone: InceptionResNetV2's init compiles in ~1.5 s instead of ~35 s).
  """
  if paths is None:
    return _init(model, rng, x, None)
  paths = tuple(tuple(p) for p in paths)
  return dict(zip(paths, _init(model, rng, x, paths))) if paths else {}

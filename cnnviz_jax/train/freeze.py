"""Which parameters train: regex rules on paths, or "the first X% of layers".

Paths look like 'layer3/block2/conv1/kernel' (the params tree joined by '/').
A layer is a module that owns parameters, counted in forward (creation) order.
"""
import re
from typing import Sequence

import flax
import jax


def _paths(params) -> list[str]:
  return ["/".join(k) for k in flax.traverse_util.flatten_dict(flax.core.unfreeze(params))]


def trainable_mask(params, freeze: Sequence[str] = (), freeze_fraction: float = 0.0,
                   module_order: Sequence[tuple[str, ...]] = ()):
  """A pytree of bools like `params`: False for frozen leaves.

  freeze: regexes; a parameter whose path matches any (re.search) is frozen.
  freeze_fraction: freeze the first fraction of layers (never the 'head'); needs
  module_order (models.module_order), the forward order the params tree has lost.
  """
  if not 0.0 <= freeze_fraction <= 1.0:
    raise ValueError(f"freeze_fraction must be in [0, 1], got {freeze_fraction}")
  patterns = [re.compile(p) for p in freeze]
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  owners = {k[:-1] for k in flat if k[0] != "head"}
  layers = [path for path in module_order if path in owners]
  if freeze_fraction and len(layers) != len(owners):
    raise ValueError("freeze_fraction needs the module order of every parameterized layer "
                     "(cj.models.module_order(model, variables, x))")
  frozen_layers = set(layers[:int(freeze_fraction * len(layers))])
  for pattern in patterns:
    if not any(pattern.search("/".join(k)) for k in flat):
      raise ValueError(f"freeze rule {pattern.pattern!r} matches no parameter; paths look like "
                       f"{', '.join(_paths(params)[:3])}, …")
  mask = {k: not (k[:-1] in frozen_layers or any(p.search("/".join(k)) for p in patterns))
          for k in flat}
  return flax.traverse_util.unflatten_dict(mask)


def split(params, mask):
  """-> (trainable, frozen) trees with None where a leaf belongs to the other part."""
  trainable = jax.tree.map(lambda p, m: p if m else None, params, mask)
  frozen = jax.tree.map(lambda p, m: None if m else p, params, mask)
  return trainable, frozen


def merge(trainable, frozen):
  return jax.tree.map(lambda t, f: f if t is None else t, trainable, frozen,
                      is_leaf=lambda x: x is None)

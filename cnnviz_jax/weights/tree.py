"""Variable trees compared by path: strict placement of converted arrays, and the one
comparison (missing / unexpected / mis-shaped, each named) that converters, transfer and
checkpoint restores report with."""
from typing import Callable, Hashable, Mapping

import flax
import jax
import numpy as np

from cnnviz_jax.errors import UserInputError
from cnnviz_jax.models import abstract_variables

Path = tuple[str, ...]


def path_str(path: Path) -> str:
  return "/".join(path)


def flat_shapes(tree) -> dict[str, tuple[int, ...]]:
  """{'params/stem/conv1/kernel': shape, …} of any pytree (dicts, dataclasses, optax
  states; arrays, ShapeDtypeStructs or orbax metadata as leaves)."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(_key_name(k) for k in path): tuple(leaf.shape) for path, leaf in flat}


def _key_name(entry) -> str:
  for attribute in ("key", "name", "idx"):
    if hasattr(entry, attribute):
      return str(getattr(entry, attribute))
  return str(entry)


def mismatches(model: Mapping[Hashable, tuple], source: Mapping[Hashable, tuple], *,
               source_name: str = "source", label: Callable[[Hashable], str] = str
               ) -> list[str]:
  """Every way `source` (path -> shape) fails to fit `model` (path -> shape), one line each:
  missing in the source, not in the model, shape mismatch (both shapes)."""
  problems = [f"missing in the {source_name}: {label(k)} {tuple(model[k])}"
              for k in model if k not in source]
  problems += [f"not in the model: {label(k)} {tuple(source[k])}" for k in source
               if k not in model]
  problems += [f"shape mismatch: {label(k)}: {source_name} {tuple(source[k])}, model "
               f"{tuple(model[k])}" for k in model
               if k in source and tuple(source[k]) != tuple(model[k])]
  return problems


def variable_shapes(model, x_shape=None) -> dict[Path, tuple[int, ...]]:
  """{('params', 'stem', 'conv1', 'kernel'): shape, …} without computing anything."""
  tree = abstract_variables(model, jax.ShapeDtypeStruct(x_shape, np.float32) if x_shape else None)
  return {k: v.shape for k, v in flax.traverse_util.flatten_dict(flax.core.unfreeze(tree)).items()}


def assign(expected: Mapping[Path, tuple[int, ...]], arrays: Mapping[Path, np.ndarray],
           origin: Mapping[Path, str] | None = None) -> dict:
  """Nests `arrays` into a variables dict, refusing any missing, extra or mis-shaped entry.

  origin: {path: source key} so an error names both sides (e.g. 'layer1.0.conv1.weight').
  """
  origin = origin or {}
  label = lambda p: f"{origin[p]} -> {path_str(p)}" if p in origin else path_str(p)  # noqa: E731
  problems = mismatches(dict(sorted(expected.items())),
                        {p: arrays[p].shape for p in sorted(arrays)}, label=label)
  if problems:
    shown = "\n  ".join(problems[:25])
    more = f"\n  … and {len(problems) - 25} more" if len(problems) > 25 else ""
    raise UserInputError(f"{len(problems)} parameter(s) do not fit the model:\n  {shown}{more}")
  return flax.traverse_util.unflatten_dict(
      {path: np.asarray(value, np.float32) for path, value in arrays.items()})

"""Strict placement of converted arrays into a model's variable tree."""
from typing import Mapping

import flax
import jax
import numpy as np

Path = tuple[str, ...]


def path_str(path: Path) -> str:
  return "/".join(path)


def variable_shapes(model, x_shape=None) -> dict[Path, tuple[int, ...]]:
  """{('params', 'stem', 'conv1', 'kernel'): shape, …} without computing anything."""
  size = getattr(model, "input_size", 224)
  x = jax.ShapeDtypeStruct(x_shape or (1, size, size, 3), np.float32)
  tree = jax.eval_shape(model.init, jax.random.key(0), x)
  return {k: v.shape for k, v in flax.traverse_util.flatten_dict(flax.core.unfreeze(tree)).items()}


def assign(expected: Mapping[Path, tuple[int, ...]], arrays: Mapping[Path, np.ndarray],
           origin: Mapping[Path, str] | None = None) -> dict:
  """Nests `arrays` into a variables dict, refusing any missing, extra or mis-shaped entry.

  origin: {path: source key} so an error names both sides (e.g. 'layer1.0.conv1.weight').
  """
  origin = origin or {}
  problems = []
  for path in sorted(set(expected) - set(arrays)):
    problems.append(f"missing: {path_str(path)} (expected shape {expected[path]})")
  for path in sorted(set(arrays) - set(expected)):
    problems.append(f"unexpected: {origin.get(path, path_str(path))} -> {path_str(path)} "
                    f"(shape {tuple(arrays[path].shape)})")
  for path in sorted(set(arrays) & set(expected)):
    if tuple(arrays[path].shape) != tuple(expected[path]):
      problems.append(f"shape mismatch: {origin.get(path, path_str(path))} -> {path_str(path)}: "
                      f"source {tuple(arrays[path].shape)}, model {tuple(expected[path])}")
  if problems:
    shown = "\n  ".join(problems[:25])
    more = f"\n  … and {len(problems) - 25} more" if len(problems) > 25 else ""
    raise ValueError(f"{len(problems)} parameter(s) do not fit the model:\n  {shown}{more}")
  return flax.traverse_util.unflatten_dict(
      {path: np.asarray(value, np.float32) for path, value in arrays.items()})

"""Transfer: a pretrained backbone into a model with a new head / class count.

Everything outside the top-level 'head' must match exactly (path and shape); the
head is re-initialised where its shape changed. Nothing is skipped silently: the
report lists what was loaded, what is new and what was dropped.
"""
import dataclasses

import flax
import jax
import numpy as np

from cnnviz_jax.weights.tree import Path, path_str


@dataclasses.dataclass(frozen=True)
class TransferReport:
  loaded: tuple[str, ...]
  new: tuple[str, ...]  # initialised fresh (the new head)
  dropped: tuple[str, ...]  # in the pretrained tree, not used (the old head)

  def __str__(self):
    return (f"loaded {len(self.loaded)} arrays, new {len(self.new)} "
            f"({', '.join(self.new) or 'none'}), dropped {len(self.dropped)} "
            f"({', '.join(self.dropped) or 'none'})")


def _is_head(path: Path) -> bool:
  return len(path) > 1 and path[1] == "head"


def transfer(pretrained, model, rng, x) -> tuple[dict, TransferReport]:
  """-> (variables for `model` with the pretrained backbone, report).

  x: an example input batch (or ShapeDtypeStruct) that fixes the input shape.
  """
  fresh = flax.traverse_util.flatten_dict(flax.core.unfreeze(jax.jit(model.init)(rng, x)))
  old = flax.traverse_util.flatten_dict(flax.core.unfreeze(pretrained))
  problems, loaded, new = [], [], []
  out = {}
  for path, value in fresh.items():
    source = old.get(path)
    if source is not None and tuple(source.shape) == tuple(value.shape):
      out[path] = np.asarray(source)
      loaded.append(path_str(path))
    elif _is_head(path):
      out[path] = value
      new.append(path_str(path))
    elif source is None:
      problems.append(f"missing in the pretrained weights: {path_str(path)} {tuple(value.shape)}")
    else:
      problems.append(f"shape mismatch: {path_str(path)}: pretrained {tuple(source.shape)}, "
                      f"model {tuple(value.shape)}")
  loaded_set = set(loaded)
  dropped = [path_str(p) for p in old if path_str(p) not in loaded_set]
  dropped_backbone = [p for p in old if p not in fresh and not _is_head(p)]
  problems += [f"not in the model: {path_str(p)}" for p in dropped_backbone]
  if problems:
    raise ValueError("the pretrained backbone does not fit this model (another "
                     "architecture?):\n  " + "\n  ".join(problems[:25]))
  return (flax.traverse_util.unflatten_dict(out),
          TransferReport(tuple(loaded), tuple(new), tuple(dropped)))

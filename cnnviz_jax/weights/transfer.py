"""Transfer: a pretrained backbone into a model with a new head / class count.

Everything outside the top-level 'head' must match exactly (path and shape); the
head is re-initialized where its shape changed. Nothing is skipped silently: the
report lists what was loaded, what is new and what was dropped.
"""
import dataclasses

import flax
import numpy as np

from cnnviz_jax import models
from cnnviz_jax.weights.tree import Path, mismatches, path_str


@dataclasses.dataclass(frozen=True)
class TransferReport:
  loaded: tuple[str, ...]
  new: tuple[str, ...]  # initialized fresh (the new head)
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
  fresh = flax.traverse_util.flatten_dict(flax.core.unfreeze(models.abstract_variables(model, x)))
  old = flax.traverse_util.flatten_dict(flax.core.unfreeze(pretrained))
  problems = mismatches({p: v.shape for p, v in fresh.items() if not _is_head(p)},
                        {p: v.shape for p, v in old.items() if not _is_head(p)},
                        source_name="pretrained weights", label=path_str)
  if problems:
    raise ValueError("the pretrained backbone does not fit this model (another "
                     "architecture?):\n  " + "\n  ".join(problems[:25]))
  loaded = [p for p, v in fresh.items() if p in old and tuple(old[p].shape) == tuple(v.shape)]
  initialized = models.initialize(model, rng, x, [p for p in fresh if p not in loaded])
  out = {p: np.asarray(old[p]) if p in loaded else initialized[p] for p in fresh}
  new = [path_str(p) for p in fresh if p not in loaded]  # a head of another shape
  dropped = [path_str(p) for p in old if p not in loaded]
  loaded = [path_str(p) for p in loaded]
  return (flax.traverse_util.unflatten_dict(out),
          TransferReport(tuple(loaded), tuple(new), tuple(dropped)))

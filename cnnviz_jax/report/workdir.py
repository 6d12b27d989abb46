"""What a training workdir holds, read back for a report: config, model, variables, status.

Works on finished and on partial workdirs (training killed: no results.json yet): the
variables come from best/ (what the final evaluation uses) or else the latest
checkpoints/ step, restored onto this process's device whatever topology wrote them.
"""
import dataclasses
import json
import pathlib

import flax.linen as nn
import ml_collections
import orbax.checkpoint as ocp

from cnnviz_jax import models
from cnnviz_jax.train import inputs
from cnnviz_jax.weights import store


class ReportError(ValueError):
  """Bad input to a report or an explain command; the message names the culprit."""


@dataclasses.dataclass
class Run:
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  data_config: dict  # resolved, with the weights' normalisation if the run used weights
  class_names: list[str]
  model: nn.Module
  variables: dict
  checkpoint: pathlib.Path  # the step directory the variables came from
  step: int
  history: list[dict]
  results: dict | None  # results.json; None while training has not finished
  planned_epochs: int

  @property
  def partial(self) -> bool:
    return self.results is None

  def status(self) -> str:
    if not self.partial:
      return f"finished: {len(self.history)} epochs, {self.results['num_steps']:,} steps"
    return (f"partial: training stopped after {len(self.history)} of {self.planned_epochs} "
            f"epochs (no results.json); model from {self.checkpoint.parent.name}/"
            f"{self.checkpoint.name} (step {self.step:,})")


def _steps(directory: pathlib.Path, item: str) -> list[int]:
  """Completed orbax steps (orbax renames a finished temporary directory to the bare step)."""
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.name.isdigit() and (p / item).is_dir())


def _restore(path: pathlib.Path) -> dict:
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(path, store.on_this_host(checkpointer, path))


def find_checkpoint(workdir: pathlib.Path, prefer_best: bool = True
                    ) -> tuple[pathlib.Path, str, int]:
  """(step directory, item name, step) of the variables to explain; ReportError if none."""
  candidates = [(workdir / "best", "model"), (workdir / "checkpoints", "state")]
  if not prefer_best:
    candidates.reverse()
  for directory, item in candidates:
    steps = _steps(directory, item)
    if steps:
      return directory / str(steps[-1]), item, steps[-1]
  raise ReportError(f"{workdir} has no checkpoint: neither {workdir / 'best'} nor "
                    f"{workdir / 'checkpoints'} holds a saved step. Train first (python -m "
                    f"cnnviz_jax.main --config … --workdir {workdir}), or give --weights DIR.")


def _read_json(path: pathlib.Path):
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ReportError(f"{path} is not valid JSON ({e}); was the run killed while writing it?") \
        from e


def load_run(workdir) -> Run:
  """Everything a report needs from `workdir`; ReportError naming what is missing."""
  workdir = pathlib.Path(workdir).absolute()
  if not workdir.is_dir():
    raise ReportError(f"workdir {workdir} does not exist")
  if not (workdir / "config.json").exists():
    raise ReportError(f"{workdir} is not a training workdir: {workdir / 'config.json'} is "
                      "missing (python -m cnnviz_jax.main writes it first)")
  config = ml_collections.ConfigDict(_read_json(workdir / "config.json"))
  results = _read_json(workdir / "results.json") if (workdir / "results.json").exists() else None
  history = _read_json(workdir / "history.json") if (workdir / "history.json").exists() else []
  restore_best = config.get("early_stopping", {}).get("restore_best", True)
  path, item, step = find_checkpoint(workdir, prefer_best=restore_best)
  restored = _restore(path / item)
  variables = {"params": restored["params"]}
  if restored.get("batch_stats"):
    variables["batch_stats"] = restored["batch_stats"]
  data_cfg = inputs.data_config_for(config)
  if results is not None:
    class_names = list(results["class_names"])
  else:
    from cnnviz_jax.data import sources  # pylint: disable=import-outside-toplevel
    class_names = list(sources.get_source(data_cfg, "train").class_names)
  model = models.create(config.model.name, num_classes=len(class_names),
                        head=config.model.get("head") or None, **config.model.get("options", {}))
  planned = sum(int(s["epochs"]) for s in config.stages)
  return Run(workdir, config, data_cfg, class_names, model, variables, path, step, history,
             results, planned)

"""What a training workdir holds, read back for a report: config, model, variables, status.

Works on finished and on partial workdirs (training killed: no results.json yet). The
layout, the checkpoints and the meaning of the config are the training side's
(train/workdir.py, train/checkpoint.py, train/from_config.py); this only gathers them.
"""
import dataclasses

import flax.linen as nn
import ml_collections

from cnnviz_jax.train import checkpoint, from_config
from cnnviz_jax.train.workdir import Workdir, WorkdirError


class ReportError(WorkdirError):
  """Bad input to a report or an explain command; the message names the culprit."""


@dataclasses.dataclass
class Run:
  workdir: Workdir
  config: ml_collections.ConfigDict
  data_config: dict  # resolved, with the weights' normalization if the run used weights
  class_names: list[str]
  model: nn.Module
  variables: dict
  checkpoint: str  # where the variables came from, e.g. 'best/1200'
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
            f"epochs (no results.json); model from {self.checkpoint} (step {self.step:,})")


def load_run(path) -> Run:
  """Everything a report needs from the workdir at `path`; WorkdirError naming what is
  missing."""
  workdir = Workdir(path).check()
  config, results = workdir.config(), workdir.results()
  restore_best = config.get("early_stopping", {}).get("restore_best", True)
  variables, where, step = checkpoint.saved_variables(workdir,
                                                      "best" if restore_best else "latest")
  data_cfg = from_config.data_config(config)
  class_names = from_config.class_names(config, results)
  return Run(workdir, config, data_cfg, class_names, from_config.model(config, len(class_names)),
             variables, f"{where}/{step}", step, workdir.history(), results,
             from_config.planned_epochs(config))

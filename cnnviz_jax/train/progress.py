"""Where a run stands: the record saved as JSON with every checkpoint and read on resume."""
import dataclasses

import ml_collections
import numpy as np


@dataclasses.dataclass(frozen=True)
class Progress:
  """stage/epoch locate the checkpoint; steps_done is set when it interrupted `epoch`."""
  stage: int = 0
  epoch: int | None = None  # None: the stage has not started
  steps_done: int | None = None  # steps of `epoch` done (a mid-epoch checkpoint) ...
  epoch_metrics: list[dict] = dataclasses.field(default_factory=list)  # ... and their metrics
  history: list[dict] = dataclasses.field(default_factory=list)  # a record per finished epoch
  best: float | None = None  # this stage's best validation value
  patience_left: int | None = None  # None: the config's patience
  stopped_early: bool = False

  @classmethod
  def from_json(cls, record: dict | None) -> "Progress":
    if record is None:
      return cls()
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in record.items() if k in known})

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  def start(self, stage: int, steps_per_epoch: int) -> tuple[int, int, list[dict]]:
    """(first epoch, its steps already done, their metrics) of `stage`."""
    if self.stage != stage or self.epoch is None:
      return 0, 0, []
    if self.steps_done is not None and self.steps_done < steps_per_epoch:
      metrics = [{k: np.float32(v) for k, v in m.items()} for m in self.epoch_metrics]
      return self.epoch, self.steps_done, metrics
    return self.epoch + 1, 0, []

  def interrupted(self, stage: int, epoch: int, steps_done: int,
                  host_metrics: list[dict]) -> "Progress":
    """The record of a checkpoint taken after `steps_done` steps of `epoch`."""
    metrics = [{k: float(v) for k, v in m.items()} for m in host_metrics]
    return dataclasses.replace(self, stage=stage, epoch=epoch, steps_done=steps_done,
                               epoch_metrics=metrics)

  def finished(self, stage: int, epoch: int, record: dict, value: float,
               early_stopping: ml_collections.ConfigDict) -> "Progress":
    """After `epoch`: its history record, and early stopping updated with `value`."""
    improved = self.best is None or (value > self.best if early_stopping.mode == "max"
                                     else value < self.best)
    patience = early_stopping.patience if self.patience_left is None else self.patience_left
    best, patience = (value, early_stopping.patience) if improved else (self.best, patience - 1)
    return Progress(stage=stage, epoch=epoch, history=[*self.history, record], best=best,
                    patience_left=patience,
                    stopped_early=bool(early_stopping.enabled and patience <= 0))

  def next_stage(self, stage: int) -> "Progress":
    """The record after `stage` ended: the next one starts fresh, the history goes on."""
    return Progress(stage=stage + 1, history=self.history)

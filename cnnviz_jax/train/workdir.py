"""The one definition of a run's workdir: what lives where, read and written here only.

  W/config.json      the config the run trained with (written first: marks a workdir); a
                     training run over a workdir refuses another config (train/config_change.py)
  W/config_changes.json  the changes a run allowed (--config_change=allow): [{step, changes:
                     [{field, old, new}]}], each in force from that step on
  W/lock.json        held while a run trains here: host, pid, since, heartbeat (train/lock.py)
  W/history.json     one record per finished epoch
  W/results.json     the final evaluation (absent while training has not finished)
  W/checkpoints/     orbax: the latest TrainStates (train/checkpoint.py)
  W/best/            orbax: the best model variables by the validation metric
  W/eval/NAME.json   evaluations of a trained workdir on other data
  W/report.html      the report; its figures in W/figures/
  W/sweep_trial.json a sweep trial's run (experiments/sweep.py): command, returncode,
                     wall_seconds summed over resumed attempts
  W/events.out.*     TensorBoard scalars (clu)

Paths are `etils.epath` paths (local or a cloud URL such as gs://bucket/W: cnnviz_jax/storage.py).
JSON files are written by process 0 only.
"""
import json
from typing import Any

import jax
import ml_collections
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.errors import UserInputError


class WorkdirError(UserInputError):
  """A workdir that is missing, not a training workdir, or holds an unreadable file."""


class Workdir:
  def __init__(self, path):
    try:
      self.path = storage.absolute(path)  # orbax wants absolute local paths
    except storage.PathError as e:
      raise WorkdirError(f"workdir {e}") from e

  config_json = property(lambda self: self.path / "config.json")
  config_changes_json = property(lambda self: self.path / "config_changes.json")
  lock_json = property(lambda self: self.path / "lock.json")
  history_json = property(lambda self: self.path / "history.json")
  results_json = property(lambda self: self.path / "results.json")
  checkpoints = property(lambda self: self.path / "checkpoints")
  best = property(lambda self: self.path / "best")
  figures = property(lambda self: self.path / "figures")
  report_html = property(lambda self: self.path / "report.html")
  sweep_trial_json = property(lambda self: self.path / "sweep_trial.json")

  def eval_json(self, name: str) -> epath.Path:
    return self.path / "eval" / f"{name}.json"

  def __str__(self) -> str:
    return str(self.path)

  # --- writing (process 0) ------------------------------------------------------------------
  def create(self) -> None:
    if jax.process_index() == 0:
      self.path.mkdir(parents=True, exist_ok=True)

  def write_config(self, config: ml_collections.ConfigDict, changes: list[dict] = (),
                   step: int = 0) -> None:
    """After the checkpoints were found to fit it: a refused config loses nothing. changes:
    the allowed ones ({field, old, new}, train/config_change.py), in force from `step` on;
    recorded before config.json, so a run killed in between loses no record."""
    if jax.process_index() == 0:
      if changes:
        self.write_json(self.config_changes_json,
                        [*self.config_changes(), {"step": step, "changes": list(changes)}])
      self.config_json.write_text(config.to_json_best_effort(indent=1))

  def write_json(self, path: epath.Path, value: Any) -> None:
    if jax.process_index() == 0:
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(json.dumps(value, indent=1))

  # --- reading ------------------------------------------------------------------------------
  def check(self) -> "Workdir":
    """self, or WorkdirError saying why this is not a training workdir."""
    if not self.path.is_dir():
      raise WorkdirError(f"workdir {self.path} does not exist")
    if not self.config_json.exists():
      raise WorkdirError(f"{self.path} is not a training workdir: {self.config_json} is missing "
                         "(python -m cnnviz_jax.main writes it first)")
    return self

  def read_json(self, path: epath.Path, default: Any = None) -> Any:
    if not path.exists():
      return default
    try:
      return json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise WorkdirError(f"{path} is not valid JSON ({e}); was the run killed while writing "
                         "it?") from e

  def config(self) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(self.check().read_json(self.config_json))

  def config_changes(self) -> list[dict]:
    """[{step, changes: [{field, old, new}]}] a run allowed, oldest first ([] if none)."""
    return self.read_json(self.config_changes_json, [])

  def history(self) -> list[dict]:
    return self.read_json(self.history_json, [])

  def results(self) -> dict | None:
    """results.json, or None while training has not finished."""
    return self.read_json(self.results_json)

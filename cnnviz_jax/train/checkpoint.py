"""orbax checkpoints of a run: the latest k for resuming, and the best by a validation metric.

Each 'latest' checkpoint holds the TrainState and a JSON 'progress' record (stage,
epoch, history, early-stopping counters); a 'best' one holds only the model variables,
so the best of an earlier stage (another optimizer) restores as well. The data position
and the dropout RNG are functions of the global step, so restoring both gives the
uninterrupted run's numbers exactly. orbax writes to a temporary directory and renames
it, so a SIGKILL mid-save leaves the previous checkpoint intact. Where they live is
train/workdir.py's business.
"""
from typing import Any

import jax
import orbax.checkpoint as ocp

from cnnviz_jax.train.workdir import Workdir, WorkdirError
from cnnviz_jax.weights import store, tree


def _manager(directory, keep: int | None, best_metric: str | None = None,
             best_mode: str = "max", item: str = "state", read_only: bool = False
             ) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=not read_only, enable_async_checkpointing=False,
      cleanup_tmp_directories=not read_only, read_only=read_only,
      best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
      best_mode=best_mode)
  # Handlers named up front, so a fresh manager (after a restart) can read item metadata.
  return ocp.CheckpointManager(directory, options=options, item_handlers={
      item: ocp.StandardCheckpointHandler(), "progress": ocp.JsonCheckpointHandler()})


class RunCheckpoints:
  """W/checkpoints (latest `keep`) and W/best (one, by `best_metric`)."""

  def __init__(self, workdir: Workdir, keep: int = 2, best_metric: str = "val_accuracy",
               best_mode: str = "max"):
    self.latest = _manager(workdir.checkpoints, keep)
    self.best = _manager(workdir.best, 1, best_metric, best_mode, item="model")
    self.best_metric = best_metric

  def save(self, state, progress: dict, metrics: dict[str, float]) -> None:
    step = int(jax.device_get(state.step))
    self.latest.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)))
    if self.best_metric in metrics:
      self.best.save(step, metrics=metrics, force=True, args=ocp.args.Composite(
          model=ocp.args.StandardSave(state.variables()), progress=ocp.args.JsonSave(progress)))

  def latest_progress(self) -> dict | None:
    step = self.latest.latest_step()
    if step is None:
      return None
    return self.latest.restore(step, args=ocp.args.Composite(
        progress=ocp.args.JsonRestore()))["progress"]

  def restore(self, abstract_state) -> tuple[Any, dict]:
    """-> (TrainState, progress) of the latest checkpoint."""
    step = self.latest.latest_step()
    check_compatible(self.latest, step, abstract_state, "state")
    restored = self.latest.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()))
    return restored["state"], restored["progress"]

  def restore_best(self, abstract_variables) -> tuple[dict, int] | tuple[None, None]:
    """-> (model variables, step) of the best checkpoint so far, or (None, None)."""
    step = self.best.best_step()
    if step is None:
      return None, None
    check_compatible(self.best, step, abstract_variables, "model")
    return self.best.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(abstract_variables)))["model"], step

  def close(self):
    self.latest.close()
    self.best.close()


def check_compatible(manager: ocp.CheckpointManager, step: int, abstract_state, item: str) -> None:
  """Refuses a checkpoint of another architecture / head / class count, naming the parameter."""
  problems = tree.mismatches(tree.flat_shapes(abstract_state),
                             tree.flat_shapes(manager.item_metadata(step)[item]),
                             source_name="checkpoint")
  if problems:
    raise ValueError(f"the checkpoint at step {step} in {manager.directory} does not fit this "
                     "model/config (another architecture, head or class count?):\n  " +
                     "\n  ".join(problems[:20]))


def saved_variables(workdir: Workdir, prefer_best: bool = True) -> tuple[dict, str, int]:
  """(model variables, 'best' | 'checkpoints', step) of a workdir, from best/ (what the
  final evaluation uses) or else the latest checkpoints/ step, restored onto this
  process's first device whatever topology wrote them. WorkdirError if none is saved."""
  candidates = [(workdir.best, "model"), (workdir.checkpoints, "state")]
  for directory, item in candidates if prefer_best else candidates[::-1]:
    if not directory.exists():
      continue
    manager = _manager(directory, None, item=item, read_only=True)
    step = manager.latest_step()
    if step is None:
      continue
    target = store.on_this_host(manager.item_metadata(step)[item])
    restored = manager.restore(step, args=ocp.args.Composite(
        **{item: ocp.args.StandardRestore(target)}))[item]
    manager.close()
    variables = {"params": restored["params"]}
    if restored.get("batch_stats"):
      variables["batch_stats"] = restored["batch_stats"]
    return variables, directory.name, step
  raise WorkdirError(f"{workdir} has no checkpoint: neither {workdir.best} nor "
                     f"{workdir.checkpoints} holds a saved step. Train first (python -m "
                     f"cnnviz_jax.main --config … --workdir {workdir}), or give --weights DIR.")

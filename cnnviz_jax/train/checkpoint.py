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
  # Reading is this process's own business: no barrier with the others, so process 0 can
  # restore for the report while they wait (orbax syncs every process by default).
  alone = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                             active_processes={jax.process_index()})
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=not read_only, enable_async_checkpointing=False,
      cleanup_tmp_directories=not read_only, read_only=read_only,
      save_interval_steps=0 if read_only else 1,
      multiprocessing_options=alone if read_only else ocp.options.MultiprocessingOptions(),
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

  def reached_preemption(self, step: int) -> bool:
    """True at the step where every host has agreed to save after a preemption notice
    (SIGTERM; jax's preemption sync manager, active under jax.distributed)."""
    return self.latest.reached_preemption(step)

  def latest_progress(self) -> dict | None:
    step = self.latest.latest_step()
    if step is None:
      return None
    return self.latest.restore(step, args=ocp.args.Composite(
        progress=ocp.args.JsonRestore()))["progress"]

  def check_fits(self, abstract_variables) -> None:
    """Refuses (naming the parameter) a latest checkpoint of another model, before any
    file of the run is touched."""
    step = self.latest.latest_step()
    if step is not None:
      saved = self.latest.item_metadata(step)["state"]
      check_compatible(self.latest, step, _model_part(abstract_variables), "state",
                       _model_part(saved))

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


def check_compatible(manager: ocp.CheckpointManager, step: int, abstract_state, item: str,
                     saved=None) -> None:
  """Refuses a checkpoint of another architecture / head / class count, naming the parameter.
  saved: the part of the item's metadata to compare (default: all of it)."""
  saved = manager.item_metadata(step)[item] if saved is None else saved
  problems = tree.mismatches(tree.flat_shapes(abstract_state), tree.flat_shapes(saved),
                             source_name="checkpoint")
  if problems:
    raise WorkdirError(f"the checkpoint at step {step} in {manager.directory} does not fit "
                       "this model/config (another architecture, head or class count?):\n  " +
                       "\n  ".join(problems[:20]))


def saved_variables(workdir: Workdir, which: str | int = "best", abstract_variables=None
                    ) -> tuple[dict, str, int]:
  """(model variables, 'best' | 'checkpoints', step) saved in a workdir, restored onto this
  process's first device whatever topology wrote them.

  which: 'best' (what the final evaluation uses; else the latest step), 'latest' (else the
  best), or a step number. abstract_variables: the model's (models.abstract_variables), to
  refuse a checkpoint of another model naming the parameter. WorkdirError if none fits.
  """
  places = [(workdir.best, "model"), (workdir.checkpoints, "state")]
  if which == "latest":
    places.reverse()
  found = {}
  for directory, item in places:
    if not directory.exists():
      continue
    manager = _manager(directory, None, item=item, read_only=True)
    found[directory.name] = manager.all_steps()
    step = manager.latest_step() if isinstance(which, str) else which
    if step is None or step not in found[directory.name]:
      manager.close()
      continue
    variables = _restore_variables(manager, step, item, abstract_variables)
    manager.close()
    return variables, directory.name, step
  if isinstance(which, int) and any(found.values()):
    raise WorkdirError(f"{workdir} has no checkpoint at step {which}; saved steps: " +
                       "; ".join(f"{k}/ {sorted(v)}" for k, v in found.items()))
  raise WorkdirError(f"{workdir} has no checkpoint: neither {workdir.best} nor "
                     f"{workdir.checkpoints} holds a saved step. Train first (python -m "
                     f"cnnviz_jax.main --config … --workdir {workdir}), or give --weights DIR.")


def _model_part(tree) -> dict:
  """The model variables of a TrainState's or a variables dict's (metadata) tree."""
  return {k: tree[k] for k in ("params", "batch_stats") if tree.get(k)}


def _restore_variables(manager: ocp.CheckpointManager, step: int, item: str, abstract) -> dict:
  saved = manager.item_metadata(step)[item]
  if abstract is not None:
    check_compatible(manager, step, _model_part(abstract), item, _model_part(saved))
  restored = manager.restore(step, args=ocp.args.Composite(
      **{item: ocp.args.StandardRestore(store.on_this_host(saved))}))[item]
  return _model_part(restored)

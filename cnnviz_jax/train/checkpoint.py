"""orbax checkpoints of a run: the latest k for resuming, and the best by a validation metric.

Each 'latest' checkpoint holds the TrainState and a JSON 'progress' record (stage,
epoch, history, early-stopping counters); a 'best' one holds only the model variables,
so the best of an earlier stage (another optimizer) restores as well. The data position and the dropout RNG are
functions of the global step, so restoring both gives the uninterrupted run's
numbers exactly. orbax writes to a temporary directory and renames it, so a
SIGKILL mid-save leaves the previous checkpoint intact.
"""
import pathlib
from typing import Any

import flax
import jax
import orbax.checkpoint as ocp


def _manager(directory: pathlib.Path, keep: int, best_metric: str | None = None,
             best_mode: str = "max", item: str = "state") -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, enable_async_checkpointing=False,
      cleanup_tmp_directories=True,
      best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
      best_mode=best_mode)
  # Handlers named up front, so a fresh manager (after a restart) can read item metadata.
  return ocp.CheckpointManager(directory, options=options, item_handlers={
      item: ocp.StandardCheckpointHandler(), "progress": ocp.JsonCheckpointHandler()})


class RunCheckpoints:
  """workdir/checkpoints (latest `keep`) and workdir/best (one, by `best_metric`)."""

  def __init__(self, workdir, keep: int = 2, best_metric: str = "val_accuracy",
               best_mode: str = "max"):
    workdir = pathlib.Path(workdir).absolute()
    self.latest = _manager(workdir / "checkpoints", keep)
    self.best = _manager(workdir / "best", 1, best_metric, best_mode, item="model")
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
  saved = manager.item_metadata(step)[item]
  saved_flat = flax.traverse_util.flatten_dict(_as_dict(saved), sep="/")
  ours_flat = flax.traverse_util.flatten_dict(_as_dict(abstract_state), sep="/")
  problems = [f"missing in the checkpoint: {k} {tuple(v.shape)}"
              for k, v in ours_flat.items() if k not in saved_flat]
  problems += [f"not in this model: {k}" for k in saved_flat if k not in ours_flat]
  problems += [f"shape mismatch: {k}: checkpoint {tuple(saved_flat[k].shape)}, model "
               f"{tuple(v.shape)}" for k, v in ours_flat.items()
               if k in saved_flat and tuple(saved_flat[k].shape) != tuple(v.shape)]
  if problems:
    raise ValueError(f"the checkpoint at step {step} in {manager.directory} does not fit this "
                     "model/config (another architecture, head or class count?):\n  " +
                     "\n  ".join(problems[:20]))


def _as_dict(tree):
  """A pytree (dataclasses, optax states, dicts) as nested dicts keyed by path names."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return flax.traverse_util.unflatten_dict(
      {tuple(_key(k) for k in path): leaf for path, leaf in flat})


def _key(entry) -> str:
  for attribute in ("key", "name", "idx"):
    if hasattr(entry, attribute):
      return str(getattr(entry, attribute))
  return str(entry)

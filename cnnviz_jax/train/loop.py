"""train_and_evaluate(config, workdir): one readable run, top to bottom.

Before anything is written, the run takes the workdir's lock (train/lock.py: one training
run at a time) and compares its config with the workdir's (train/config_change.py). Sections:
devices → input → model & weights → per stage (trainable mask, optimizer,
jitted steps) → resume → epochs (train, evaluate, log, checkpoint, early stop) →
final evaluation with the best parameters → results.json.
"""
import logging
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metric_writers, periodic_actions

from cnnviz_jax.train import checkpoint as checkpoint_lib
from cnnviz_jax.train import config_change as config_change_lib
from cnnviz_jax.train import evaluate, from_config, inputs
from cnnviz_jax.train import lock as lock_lib
from cnnviz_jax.train import mesh as mesh_lib
from cnnviz_jax.train import steps as steps_lib
from cnnviz_jax.train import validate
from cnnviz_jax.train.workdir import Workdir


class NonFiniteLossError(FloatingPointError):
  pass


class Preempted(Exception):
  """The scheduler asked the run to stop (SIGTERM): a checkpoint of this step was saved on
  every host; the same command resumes from it."""

  def __init__(self, step: int, workdir: Workdir):
    super().__init__(f"preempted: saved a checkpoint at step {step} in {workdir.checkpoints}; "
                     "run the same command again to resume from it")
    self.step = step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir,
                       config_change: str = "refuse") -> dict:
  """Trains and evaluates as `config` says in `workdir` (resuming what it holds); results.json's
  record. config_change: 'refuse' (ConfigChangedError) or 'allow' (recorded) a config other than
  the workdir's config.json. WorkdirLockedError while another run trains there."""
  workdir = Workdir(workdir)
  validate.check_inputs_exist(config)
  with lock_lib.training_lock(workdir):  # released on every exit, Preempted included
    changes = config_change_lib.check(workdir, config, config_change)
    return _train_and_evaluate(config, workdir, changes)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: Workdir,
                        changes: list[dict]) -> dict:
  workdir.create()
  writer = metric_writers.create_default_writer(str(workdir), just_logging=jax.process_index() > 0)

  # --- Devices ------------------------------------------------------------------------------
  mesh = mesh_lib.make_mesh()

  # --- Input --------------------------------------------------------------------------------
  data = inputs.Input(config, mesh)  # checks that the global batch divides by the devices
  shardings = (mesh_lib.replicated(mesh), data.sharding)
  steps_per_epoch = data.steps_per_epoch
  logging.info("training %s on %d %s device(s) in %s; data: %s", config.model.name,
               jax.device_count(), jax.devices()[0].device_kind, workdir, data.describe())

  # --- Model and initial variables ----------------------------------------------------------
  model = from_config.model(config, data.num_classes)
  example = jax.ShapeDtypeStruct((data.config['batch_size'], *data.image_shape), jnp.float32)
  variables = from_config.initial_variables(config, model, example)
  params, batch_stats = variables["params"], variables.get("batch_stats", {})
  rng = jax.random.PRNGKey(config.seed + 1)  # raw uint32 key: orbax stores it as is
  ckpt = checkpoint_lib.RunCheckpoints(workdir, keep=config.checkpoint_keep,
                                       best_metric="val_" + config.early_stopping.metric,
                                       best_mode=config.early_stopping.mode)
  ckpt.check_fits(jax.eval_shape(lambda v: v, variables))  # a foreign workdir loses nothing
  workdir.write_config(config, changes, step=ckpt.latest.latest_step() or 0)  # the allowed ones

  # Feature extraction: run the frozen backbone once, train the head on it.
  features_shape = None
  if config.get("feature_extraction"):
    data = data.cached_features(model, {"params": params, "batch_stats": batch_stats})
    features_shape = example.shape

  progress = ckpt.latest_progress() or {"stage": 0, "history": [], "done": False}
  history = progress["history"]
  eval_step = jax.jit(steps_lib.make_eval_step(model, features_input_shape=features_shape),
                      in_shardings=shardings, out_shardings=shardings)
  first_step_of_stage = sum(s.epochs for s in config.stages[:progress["stage"]]) * steps_per_epoch

  every = config.get("checkpoint_every_steps", 0)  # also inside epochs (long epochs)

  # --- Stages (one, or e.g. head-only then everything) --------------------------------------
  for stage_index in range(progress["stage"], len(config.stages)):
    stage = config.stages[stage_index]
    stage_variables = {"params": params, "batch_stats": batch_stats}
    mask = from_config.trainable_mask(stage, model, stage_variables, example)
    total_steps = stage.epochs * steps_per_epoch
    state, train_step = from_config.stage_state_and_step(
        config, stage, model, stage_variables, mask,
        first_step=first_step_of_stage, rng=rng, steps_per_epoch=steps_per_epoch,
        shardings=shardings, features_input_shape=features_shape)
    start_epoch, best, patience_left = 0, None, config.early_stopping.patience
    done_steps, done_metrics = 0, []  # of an epoch a mid-epoch checkpoint interrupted
    if progress.get("stage") == stage_index and progress.get("epoch") is not None:
      state, progress = ckpt.restore(jax.eval_shape(lambda s: s, state))
      start_epoch = progress["epoch"] + 1
      if progress.get("steps_done", steps_per_epoch) < steps_per_epoch:
        start_epoch, done_steps = progress["epoch"], progress["steps_done"]
        done_metrics = [{k: np.float32(v) for k, v in m.items()}
                        for m in progress["epoch_metrics"]]
      best, patience_left = progress.get("best"), progress.get("patience_left", patience_left)
      logging.info("resumed at step %d (stage %d, epoch %d)", int(state.step), stage_index,
                   start_epoch)
    report = periodic_actions.ReportProgress(num_train_steps=first_step_of_stage + total_steps,
                                             writer=writer, every_secs=10)

    for epoch in range(start_epoch, stage.epochs):
      if progress.get("stopped_early"):
        break
      # --- Train one epoch ---
      step0 = first_step_of_stage + epoch * steps_per_epoch
      first = done_steps if epoch == start_epoch else 0
      step_metrics = done_metrics if epoch == start_epoch else []
      start = time.perf_counter()
      for i, batch in enumerate(data.train_batches(step0 + first, steps_per_epoch - first),
                                start=first):
        state, m = train_step(state, batch)
        step_metrics.append(m)
        step = step0 + i + 1
        if jax.process_index() == 0:  # progress on the console of one process only
          report(step)
        preempted = ckpt.reached_preemption(step)  # every host, every step (orbax / jax)
        if i + 1 < steps_per_epoch and (preempted or (every and step % every == 0)):
          ckpt.save(state, {"stage": stage_index, "epoch": epoch, "steps_done": i + 1,
                            "epoch_metrics": [{k: float(v) for k, v in m.items()}
                                              for m in inputs.replicated_to_host(step_metrics)],
                            "history": history, "best": best,
                            "patience_left": patience_left}, {})
        if preempted:
          raise Preempted(step, workdir)
      host_metrics = inputs.replicated_to_host(step_metrics)
      losses = np.asarray([float(m["loss"]) for m in host_metrics])
      bad = np.flatnonzero(~np.isfinite(losses))
      if bad.size:
        raise NonFiniteLossError(
            f"loss is {losses[bad[0]]} at step {step0 + bad[0] + 1} (stage {stage_index}, epoch "
            f"{epoch}); the last good checkpoint in {workdir.checkpoints} is kept. Lower the "
            "learning rate or enable grad_clip.")
      sums = jax.tree.map(lambda *x: float(np.sum(x)), *host_metrics)
      train = {"loss": float(np.mean(losses)), "accuracy": sums["correct"] / sums["count"]}
      # --- Evaluate ---
      val, _, _ = evaluate.evaluate(eval_step, state.variables(),
                                    data.eval_batches("validation"))
      record = {"stage": stage_index, "epoch": epoch, "step": int(state.step),
                "lr": float(host_metrics[-1]["lr"]),  # applied by the epoch's last update
                "train_loss": train["loss"], "train_accuracy": train["accuracy"],
                "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                "epoch_seconds": time.perf_counter() - start}
      history.append(record)
      writer.write_scalars(int(state.step), {k: v for k, v in record.items()
                                             if k not in ("stage", "epoch", "step")})
      logging.info("stage %d epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                   stage_index, epoch, train["loss"], train["accuracy"], val["loss"],
                   val["accuracy"])
      # --- Early stopping and checkpoints ---
      value = val[config.early_stopping.metric]
      improved = best is None or (value > best if config.early_stopping.mode == "max"
                                  else value < best)
      best, patience_left = (value, config.early_stopping.patience) if improved else (
          best, patience_left - 1)
      stop = config.early_stopping.enabled and patience_left <= 0
      progress = {"stage": stage_index, "epoch": epoch, "history": history, "best": best,
                  "patience_left": patience_left, "stopped_early": stop}
      ckpt.save(state, progress, {"val_" + config.early_stopping.metric: value})
      workdir.write_json(workdir.history_json, history)
      if preempted:
        raise Preempted(step, workdir)
      if stop:
        logging.info("early stopping after epoch %d: no better val %s for %d epochs", epoch,
                     config.early_stopping.metric, config.early_stopping.patience)
    params, batch_stats, rng = state.params, state.batch_stats, state.rng
    if config.early_stopping.restore_best:  # the next stage starts from the best so far
      best_variables, best_step = ckpt.restore_best(jax.eval_shape(state.variables))
      if best_variables is not None:
        params, batch_stats = best_variables["params"], best_variables.get("batch_stats", {})
        logging.info("continuing from the best checkpoint (step %d)", best_step)
    first_step_of_stage += stage.epochs * steps_per_epoch
    progress = {"stage": stage_index + 1, "history": history}

  # --- Final evaluation ---------------------------------------------------------------------
  final = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
  out = evaluate.results_record(
      eval_step, final, {s: lambda s=s: data.eval_batches(s) for s in data.eval_splits},
      data.class_names, config.model.name, first_step_of_stage)
  workdir.write_json(workdir.results_json, out)
  writer.flush()
  ckpt.close()
  return out

"""train_and_evaluate(config, workdir): one run, as small named steps.

Before anything is written, the run takes the workdir's lock (train/lock.py: one training
run at a time) and compares its config with the workdir's (train/config_change.py). Then:
_start (devices, input, model and weights) → per stage, _train_stage (trainable mask,
optimizer and jitted step; resume; epochs of _train_epoch and _end_epoch: evaluate, log,
checkpoint, early stop) → _finish (final evaluation with the best parameters, results.json).
Where the run stands is a `progress.Progress`, saved with every checkpoint.
"""
import dataclasses
import logging
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metric_writers, periodic_actions
from flax import linen as nn

from cnnviz_jax import console
from cnnviz_jax.train import checkpoint as checkpoint_lib
from cnnviz_jax.train import config_change as config_change_lib
from cnnviz_jax.train import evaluate, from_config, inputs
from cnnviz_jax.train import lock as lock_lib
from cnnviz_jax.train import mesh as mesh_lib
from cnnviz_jax.train import steps as steps_lib
from cnnviz_jax.train import validate
from cnnviz_jax.train.progress import Progress
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


@dataclasses.dataclass(frozen=True)
class _Run:
  """What every stage of a run shares."""
  config: ml_collections.ConfigDict
  workdir: Workdir
  batches: inputs.Input
  model: nn.Module
  example: jax.ShapeDtypeStruct  # a global batch of images
  features_shape: tuple | None  # feature extraction: the backbone's input shape
  shardings: tuple  # (replicated, batch)
  checkpoints: checkpoint_lib.RunCheckpoints
  eval_step: Callable
  writer: Any

  @property
  def steps_per_epoch(self) -> int:
    return self.batches.steps_per_epoch


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: Workdir,
                        changes: list[dict]) -> dict:
  workdir.create()
  run, variables = _start(config, workdir, changes)
  progress = Progress.from_json(run.checkpoints.latest_progress())
  rng = jax.random.PRNGKey(config.seed + 1)  # raw uint32 key: orbax stores it as is
  first_step = sum(s.epochs for s in config.stages[:progress.stage]) * run.steps_per_epoch
  for stage in range(progress.stage, len(config.stages)):  # one, or e.g. head then all
    variables, rng, progress = _train_stage(run, stage, variables, rng, progress, first_step)
    first_step += config.stages[stage].epochs * run.steps_per_epoch
  return _finish(run, variables, first_step)


def _start(config: ml_collections.ConfigDict, workdir: Workdir, changes: list[dict]
           ) -> tuple[_Run, dict]:
  """Devices, input, model, initial variables, checkpoints and the eval step."""
  mesh = mesh_lib.make_mesh()
  batches = inputs.Input(config, mesh)  # checks that the global batch divides by the devices
  shardings = (mesh_lib.replicated(mesh), batches.sharding)
  logging.info("training %s on %d %s device(s) in %s; data: %s", config.model.name,
               jax.device_count(), jax.devices()[0].device_kind, workdir, batches.describe())
  model = from_config.model(config, batches.num_classes)
  example = jax.ShapeDtypeStruct((batches.config["batch_size"], *batches.image_shape),
                                 jnp.float32)
  initial = from_config.initial_variables(config, model, example)
  checkpoints = checkpoint_lib.RunCheckpoints(
      workdir, keep=config.checkpoint_keep, best_metric="val_" + config.early_stopping.metric,
      best_mode=config.early_stopping.mode)
  checkpoints.check_fits(jax.eval_shape(lambda v: v, initial))  # a foreign workdir loses nothing
  workdir.write_config(config, changes, step=checkpoints.latest.latest_step() or 0)
  variables = {"params": initial["params"], "batch_stats": initial.get("batch_stats", {})}
  features_shape = None
  if config.get("feature_extraction"):  # run the frozen backbone once, train the head on it
    batches = batches.cached_features(model, variables)
    features_shape = example.shape
  eval_step = jax.jit(steps_lib.make_eval_step(model, features_input_shape=features_shape),
                      in_shardings=shardings, out_shardings=shardings)
  writer = metric_writers.create_default_writer(str(workdir),
                                                just_logging=jax.process_index() > 0)
  return _Run(config, workdir, batches, model, example, features_shape, shardings, checkpoints,
              eval_step, writer), variables


def _train_stage(run: _Run, stage: int, variables: dict, rng, progress: Progress,
                 first_step: int) -> tuple[dict, Any, Progress]:
  """Trains stage `stage` (resuming it where `progress` says); -> the variables the next
  stage starts from, the RNG and the progress after it."""
  spec = run.config.stages[stage]
  trainable = from_config.trainable_mask(spec, run.model, variables, run.example)
  state, train_step = from_config.stage_state_and_step(
      run.config, spec, run.model, variables, trainable, first_step=first_step, rng=rng,
      steps_per_epoch=run.steps_per_epoch, shardings=run.shardings,
      features_input_shape=run.features_shape)
  if progress.stage == stage and progress.epoch is not None:
    state, saved = run.checkpoints.restore(jax.eval_shape(lambda s: s, state))
    progress = Progress.from_json(saved)
  start_epoch, done_steps, done_metrics = progress.start(stage, run.steps_per_epoch)
  if progress.epoch is not None:
    logging.info("resumed at step %d (stage %d, epoch %d)", int(state.step), stage, start_epoch)
  report = _reporter(run, first_step + spec.epochs * run.steps_per_epoch)
  with console.progress_bar(spec.epochs * run.steps_per_epoch,
                            start_epoch * run.steps_per_epoch + done_steps, f"stage {stage}",
                            show=jax.process_index() == 0) as bar:
    def advance(step: int) -> None:  # clu's logged line (our commands) and the bar (elsewhere)
      report(step)
      bar.update()

    for epoch in range(start_epoch, spec.epochs):
      if progress.stopped_early:
        break
      done = (done_steps, done_metrics) if epoch == start_epoch else (0, [])
      epoch_first_step = first_step + epoch * run.steps_per_epoch
      start = time.perf_counter()
      state, step_metrics, preempted = _train_epoch(
          run, state, train_step, progress, stage, epoch, epoch_first_step, advance, done)
      progress = _end_epoch(run, state, progress, stage, epoch, step_metrics, epoch_first_step,
                            start)
      bar.set_postfix_str(f"epoch {epoch + 1}/{spec.epochs}, val accuracy "
                          f"{progress.history[-1]['val_accuracy']:.2%}", refresh=False)
      if preempted:  # at the epoch's last step: its checkpoint is the one just saved
        raise Preempted(int(state.step), run.workdir)
  return _stage_result(run, state), state.rng, progress.next_stage(stage)


def _reporter(run: _Run, num_train_steps: int) -> Callable[[int], None]:
  """clu's progress and ETA, every 10 s on process 0: a logged line that our commands show
  (a notebook shows the tqdm bar instead: console.py), and steps/s to TensorBoard."""
  report = periodic_actions.ReportProgress(num_train_steps=num_train_steps, writer=run.writer,
                                           every_secs=10)
  return report if jax.process_index() == 0 else lambda step: None


def _train_epoch(run: _Run, state, train_step, progress: Progress, stage: int, epoch: int,
                 first_step: int, report, done: tuple[int, list]) -> tuple[Any, list, bool]:
  """The epoch's steps from done[0] on; -> (state, every step's metrics, preempted at its
  last step). Mid-epoch checkpoints (checkpoint_every_steps, a preemption) keep the
  metrics of the steps done, so a resumed epoch reports what an uninterrupted one would."""
  every = run.config.get("checkpoint_every_steps", 0)  # long epochs
  steps = run.steps_per_epoch
  step_metrics, preempted = list(done[1]), False
  for i, batch in enumerate(run.batches.train_batches(first_step + done[0], steps - done[0]),
                            start=done[0]):
    state, metrics = train_step(state, batch)
    step_metrics.append(metrics)
    step = first_step + i + 1
    report(step)  # on the console of process 0 only
    preempted = run.checkpoints.reached_preemption(step)  # every host, every step (orbax / jax)
    if i + 1 < steps and (preempted or (every and step % every == 0)):
      interrupted = progress.interrupted(stage, epoch, i + 1,
                                         inputs.replicated_to_host(step_metrics))
      run.checkpoints.save(state, interrupted.to_json(), {})
      if preempted:
        raise Preempted(step, run.workdir)
  return state, step_metrics, preempted


def _train_summary(host_metrics: list[dict], first_step: int, where: str,
                   workdir: Workdir) -> dict:
  """Mean loss and accuracy of an epoch's steps; a non-finite loss names its step.

  Per-step records rather than a running clu.metrics average: the check names the step,
  and a mid-epoch checkpoint stores the records (Progress.epoch_metrics)."""
  losses = np.asarray([float(m["loss"]) for m in host_metrics])
  bad = np.flatnonzero(~np.isfinite(losses))
  if bad.size:
    raise NonFiniteLossError(
        f"loss is {losses[bad[0]]} at step {first_step + bad[0] + 1} ({where}); the last good "
        f"checkpoint in {workdir.checkpoints} is kept. Lower the learning rate or enable "
        "grad_clip.")
  sums = jax.tree.map(lambda *x: float(np.sum(x)), *host_metrics)
  return {"loss": float(np.mean(losses)), "accuracy": sums["correct"] / sums["count"]}


def _end_epoch(run: _Run, state, progress: Progress, stage: int, epoch: int,
               step_metrics: list, first_step: int, start: float) -> Progress:
  """Evaluates, logs and checkpoints a finished epoch; -> the progress after it."""
  host_metrics = inputs.replicated_to_host(step_metrics)
  train = _train_summary(host_metrics, first_step, f"stage {stage}, epoch {epoch}", run.workdir)
  val, _, _ = evaluate.evaluate(run.eval_step, state.variables(),
                                run.batches.eval_batches("validation"))
  record = {"stage": stage, "epoch": epoch, "step": int(state.step),
            "lr": float(host_metrics[-1]["lr"]),  # applied by the epoch's last update
            "train_loss": train["loss"], "train_accuracy": train["accuracy"],
            "val_loss": val["loss"], "val_accuracy": val["accuracy"],
            "epoch_seconds": time.perf_counter() - start}
  run.writer.write_scalars(int(state.step), {k: v for k, v in record.items()
                                             if k not in ("stage", "epoch", "step")})
  logging.info("stage %d epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
               stage, epoch, train["loss"], train["accuracy"], val["loss"], val["accuracy"])
  stopping = run.config.early_stopping
  value = val[stopping.metric]
  progress = progress.finished(stage, epoch, record, value, stopping)
  run.checkpoints.save(state, progress.to_json(), {"val_" + stopping.metric: value})
  run.workdir.write_json(run.workdir.history_json, progress.history)
  if progress.stopped_early:
    logging.info("early stopping after epoch %d: no better val %s for %d epochs", epoch,
                 stopping.metric, stopping.patience)
  return progress


def _stage_result(run: _Run, state) -> dict:
  """The variables a stage hands on: its last, or with restore_best the best so far."""
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  if run.config.early_stopping.restore_best:
    best, best_step = run.checkpoints.restore_best(jax.eval_shape(state.variables))
    if best is not None:
      variables = {"params": best["params"], "batch_stats": best.get("batch_stats", {})}
      logging.info("continuing from the best checkpoint (step %d)", best_step)
  return variables


def _finish(run: _Run, variables: dict, num_steps: int) -> dict:
  """The final evaluation of every eval split; results.json."""
  final = {"params": variables["params"],
           **({"batch_stats": variables["batch_stats"]} if variables["batch_stats"] else {})}
  out = evaluate.results_record(
      run.eval_step, final,
      {s: lambda s=s: run.batches.eval_batches(s) for s in run.batches.eval_splits},
      run.batches.class_names, run.config.model.name, num_steps)
  run.workdir.write_json(run.workdir.results_json, out)
  run.writer.flush()
  run.checkpoints.close()
  return out

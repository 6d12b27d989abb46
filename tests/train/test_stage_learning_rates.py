"""The learning rate each update of a second stage applies, measured from the parameters.

SGD without momentum makes the applied rate observable: Δparams = −lr · grad. With one
full-batch step per epoch every step has a checkpoint, so the rate of each update is read
from two consecutive checkpoints and a gradient computed here, and compared with the
schedule's definition (written out below, not taken from optax or the library) at the
stage's own step. history.json's `lr` must be that same applied rate.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import runs
from cnnviz_jax.data import pipeline
from cnnviz_jax.train import from_config, loop
from configs import default

FIRST_STAGE_STEPS = 3
SECOND_STAGE_STEPS = 5


def _warmup_cosine(k, lr=0.1, warmup=2, end=0.01, total=SECOND_STAGE_STEPS):
  if k < warmup:
    return lr * k / warmup
  return end + (lr - end) * 0.5 * (1 + math.cos(math.pi * (k - warmup) / (total - warmup)))


def _triangular(k, low=0.01, high=0.1, step_size=2):
  """Smith 2017, eq. (1)-(3): cycle, x, and the triangular rate."""
  cycle = math.floor(1 + k / (2 * step_size))
  x = abs(k / step_size - 2 * cycle + 1)
  return low + (high - low) * max(0.0, 1 - x)


SCHEDULES = {
    "constant": (dict(lr=0.05), lambda k: 0.05),
    "warmup_cosine": (dict(lr=0.1, warmup_epochs=2.0, end_lr=0.01), _warmup_cosine),
    # step decay by 0.5 at the start of epochs 2 and 4
    "piecewise": (dict(lr=0.1, boundaries_epochs=(2, 4), decay_factor=0.5),
                  lambda k: 0.1 * 0.5 ** ((k >= 2) + (k >= 4))),
    "cyclic": (dict(min_lr=0.01, max_lr=0.1, step_size_epochs=2.0), _triangular),
}


def _config(data_dir, schedule: str):
  config = runs.tiny_config(data_dir)
  config.data.shapes.update(num_train=32, num_validation=32, num_test=32)  # 1 step per epoch
  config.data.batch_size = 32
  config.checkpoint_keep = FIRST_STAGE_STEPS + SECOND_STAGE_STEPS  # every step's state
  config.eval_splits = ("validation",)
  config.early_stopping.restore_best = False  # stage 2 starts from stage 1's last step
  fields, _ = SCHEDULES[schedule]
  config.stages = [
      default.stage(epochs=FIRST_STAGE_STEPS, optimizer="sgd", lr=0.02, schedule="constant"),
      default.stage(epochs=SECOND_STAGE_STEPS, optimizer="sgd", schedule=schedule)]
  for stage in config.stages:
    stage.optimizer.momentum = 0.0
  config.stages[1].schedule.update(fields)
  return config


def _full_batch(config):
  images, labels = [], []
  for batch in pipeline.eval_iterator(from_config.data_config(config), split="train"):
    keep = np.asarray(batch["valid"]) > 0
    images.append(np.asarray(batch["image"])[keep])
    labels.append(np.asarray(batch["label"])[keep])
  return jnp.asarray(np.concatenate(images)), jnp.asarray(np.concatenate(labels))


def _gradient(model, state, images, labels):
  def loss(params):
    logits, _ = model.apply({"params": params, "batch_stats": state["batch_stats"]}, images,
                            train=True, mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return jax.grad(loss)(state["params"])


@pytest.mark.slow
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_second_stage_applies_its_schedule_from_its_own_step_zero(tmp_path, data_dir, schedule):
  config = _config(data_dir, schedule)
  loop.train_and_evaluate(config, tmp_path)
  model = from_config.model(config, num_classes=3)
  images, labels = _full_batch(config)
  history = runs.history(tmp_path)
  _, expected = SCHEDULES[schedule]
  for k in range(SECOND_STAGE_STEPS):
    step = FIRST_STAGE_STEPS + k
    before, after = runs.state_at(tmp_path, step), runs.state_at(tmp_path, step + 1)
    grad = jnp.concatenate([g.ravel() for g in jax.tree.leaves(
        _gradient(model, before, images, labels))])
    delta = jnp.concatenate([(a - b).ravel() for a, b in zip(
        jax.tree.leaves(after["params"]), jax.tree.leaves(before["params"]))])
    applied = float(-(delta @ grad) / (grad @ grad))
    np.testing.assert_allclose(applied, expected(k), atol=2e-3 * 0.1, err_msg=f"step {k}")
    record = history[step]
    assert (record["stage"], record["step"]) == (1, step + 1)
    np.testing.assert_allclose(record["lr"], applied, atol=2e-3 * 0.1, err_msg=f"logged {k}")

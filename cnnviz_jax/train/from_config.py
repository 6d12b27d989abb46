"""What an experiment config means: the one place it becomes a data config, a model,
initial variables, and each stage's trainable mask, optimizer and train step.

Training, evaluation, the report, experiments and the CLI all build a run through these
functions, so a field (say `config.model.dtype`) means the same thing everywhere.
"""
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from cnnviz_jax import models, weights
from cnnviz_jax.data import config as data_config_lib
from cnnviz_jax.train import explanation_loss, freeze, optimizers, schedules
from cnnviz_jax.train import steps as steps_lib
from cnnviz_jax.train.state import TrainState


def data_config(config: ml_collections.ConfigDict) -> dict:
  """The resolved data config, with image size, eval resizing and normalization taken
  from the converted weights when the run starts from them."""
  resolved = data_config_lib.resolve(config.data)
  if not config.get("weights"):
    return resolved
  return data_config_lib.with_meta(resolved, weights.load_meta(config.weights))


def class_names(config: ml_collections.ConfigDict, results: dict | None) -> list[str]:
  """The classes a run of `config` trains on, in its model's output order: those of its
  results.json (`results`), else those of its training split (read from the data)."""
  if results is not None:
    return list(results["class_names"])
  from cnnviz_jax.data import datasets  # pylint: disable=import-outside-toplevel  (tfds, PIL)
  return list(datasets.get_source(data_config(config), "train").class_names)


def model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The configured model: name, head, compute dtype and the family's own options."""
  dtype = config.model.get("dtype", "float32")
  precision = {} if dtype == "float32" else {"dtype": jnp.dtype(dtype)}
  return models.create(config.model.name, num_classes=num_classes,
                       head=config.model.get("head") or None, **precision,
                       **config.model.get("options", {}))


def initial_variables(config: ml_collections.ConfigDict, net: nn.Module, example) -> dict:
  """A fresh initialization, or the converted weights' backbone with a new head."""
  rng = jax.random.key(config.seed)
  if not config.get("weights"):
    return models.initialize(net, rng, example)
  pretrained, meta = weights.load(config.weights)
  variables, report = weights.transfer(pretrained, net, rng, example)
  logging.info("weights %s (%s %s): %s", config.weights, meta.source, meta.arch, report)
  return variables


def planned_epochs(config: ml_collections.ConfigDict) -> int:
  return sum(int(stage["epochs"]) for stage in config.stages)


def trainable_mask(stage: ml_collections.ConfigDict, net: nn.Module, variables, example):
  """The stage's freeze rules (regexes, the first fraction of layers) as a bool tree."""
  fraction = stage.get("freeze_fraction", 0.0)
  order = models.module_order(net, variables, example) if fraction else ()
  return freeze.trainable_mask(variables["params"], stage.get("freeze", ()), fraction,
                               module_order=order)


def stage_optimizer(stage: ml_collections.ConfigDict, steps_per_epoch: int
                    ) -> optax.GradientTransformation:
  """The stage's optimizer; its schedule runs on the optimizer's own count, so it starts
  at the stage's step 0 and continues exactly from a restored optimizer state."""
  schedule = schedules.make(stage.schedule, steps_per_epoch, stage.epochs * steps_per_epoch)
  return optimizers.make(stage.optimizer, schedule)


def stage_state_and_step(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict,
                         net: nn.Module, variables, mask, *, first_step: int, rng,
                         steps_per_epoch: int, shardings, features_input_shape=None):
  """-> (TrainState placed on the mesh, jitted train step) of a stage that starts at global
  step `first_step` from `variables`: its optimizer, freezing, label smoothing and penalty."""
  tx = stage_optimizer(stage, steps_per_epoch)
  trainable, _ = freeze.split(variables["params"], mask)
  state = TrainState(step=jnp.asarray(first_step, jnp.int32), params=variables["params"],
                     batch_stats=variables.get("batch_stats", {}),
                     opt_state=tx.init(trainable), rng=rng)
  freeze_bn = stage.get("freeze_bn", False)
  step = steps_lib.make_train_step(
      net, tx, mask, label_smoothing=config.label_smoothing, freeze_bn=freeze_bn,
      features_input_shape=features_input_shape,
      explanation_penalty=explanation_loss.make(config.get("explanation_loss"), net,
                                                freeze_bn=freeze_bn))
  return jax.device_put(state, shardings[0]), steps_lib.jit_train_step(step, shardings)

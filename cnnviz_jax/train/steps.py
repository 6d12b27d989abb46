"""The jitted train and eval steps.

Gradients are taken with respect to the trainable parameters only: frozen ones
enter as constants, so no backward pass runs below the lowest trainable layer.
"""
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from cnnviz_jax.models import taps
from cnnviz_jax.train import freeze, optimizers
from cnnviz_jax.train.state import TrainState


def batchnorm_interceptor(*, batch_statistics: bool, statistics: dict | None = None
                          ) -> Callable:
  """-> an interceptor under which every BatchNorm normalizes without updating its running
  averages: with the batch's statistics (as in training) or the running ones (frozen BN).

  statistics: with batch_statistics, each BatchNorm stores its batch's (mean, var) there
  under its module path, and a later call whose path is there normalizes with the stored
  ones, constants of that call's input: the batch again, or points along a path from it,
  normalized as the batch was, with no gradient through the statistics.
  nn.BatchNorm fixes `use_running_average` at construction in most models, so the formula
  is applied here from the module's own variables and settings.
  """

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if not isinstance(module, nn.BatchNorm) or context.method_name != "__call__":
      return next_fun(*args, **kwargs)
    x = args[0]
    if module.axis not in (-1, x.ndim - 1):
      raise NotImplementedError(f"BatchNorm over axis {module.axis} is not supported here "
                                "(freeze_bn, the explanation penalty): only the last axis")
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if batch_statistics and statistics is not None and module.path in statistics:
      mean, var = statistics[module.path]
    elif batch_statistics:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(xf, axes)
      var = jnp.maximum(jnp.mean(jnp.square(xf), axes) - jnp.square(mean), 0.0)  # as flax
      if statistics is not None:
        statistics[module.path] = (mean, var)
    else:
      mean, var = module.variables["batch_stats"]["mean"], module.variables["batch_stats"]["var"]
    y = (xf - mean) * jax.lax.rsqrt(var + module.epsilon)
    params = module.variables.get("params", {})
    if module.use_scale:
      y = y * params["scale"]
    if module.use_bias:
      y = y + params["bias"]
    return y.astype(module.dtype or x.dtype)

  return interceptor


def cross_entropy(logits, labels, weights, label_smoothing: float = 0.0):
  """Mean softmax cross-entropy over the examples with weight 1 (padding has weight 0)."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing) \
      if label_smoothing else jax.nn.one_hot(labels, logits.shape[-1])
  losses = optax.softmax_cross_entropy(logits, targets)
  return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def classification_metrics(logits, labels, weights) -> dict[str, jax.Array]:
  """Sums (not means), so batches and hosts add up exactly."""
  top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
  return {
      "loss_sum": optax.softmax_cross_entropy_with_integer_labels(logits, labels) @ weights,
      "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * weights),
      "correct_top5": jnp.sum(jnp.any(top5 == labels[:, None], -1) * weights),
      "count": jnp.sum(weights),
  }


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, trainable_mask, *,
                    label_smoothing: float = 0.0, freeze_bn: bool = False,
                    features_input_shape: tuple[int, ...] | None = None,
                    explanation_penalty: Callable | None = None) -> Callable:
  """-> step(state, batch) -> (state, metrics). batch: {'image', 'label'[, 'valid']}.

  features_input_shape: train the head alone on cached backbone features
  (batch['image'] holds features; the shape is that of one input batch).
  explanation_penalty(variables, batch, weights, key) -> scalar added to the loss
  (train/explanation_loss.py; the batch then carries 'object_mask').
  """

  def forward(params, batch_stats, images, rng):
    variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
    kwargs = dict(train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    if features_input_shape is not None:
      return taps.apply_head(model, variables, images, features_input_shape, **kwargs)
    if freeze_bn:
      with nn.intercept_methods(batchnorm_interceptor(batch_statistics=False)):
        return model.apply(variables, images, **kwargs)
    return model.apply(variables, images, **kwargs)

  def loss_fn(trainable, frozen, batch_stats, batch, rng):
    params = freeze.merge(trainable, frozen)
    logits, updates = forward(params, batch_stats, batch["image"], rng)
    weights = batch.get("valid", jnp.ones(logits.shape[0]))
    loss = cross_entropy(logits, batch["label"], weights, label_smoothing)
    penalty = None
    if explanation_penalty is not None:
      variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
      penalty = explanation_penalty(variables, batch, weights, jax.random.fold_in(rng, 1))
      loss = loss + penalty
    return loss, (logits, updates.get("batch_stats", batch_stats), penalty)

  def step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    trainable, frozen = freeze.split(state.params, trainable_mask)
    (loss, (logits, batch_stats, penalty)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        trainable, frozen, state.batch_stats, batch, rng)
    updates, opt_state = tx.update(grads, state.opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    if freeze_bn:
      batch_stats = state.batch_stats
    metrics = classification_metrics(logits, batch["label"],
                                     batch.get("valid", jnp.ones(logits.shape[0])))
    metrics["loss"] = loss
    applied = optimizers.applied_learning_rate(opt_state)
    if applied is not None:  # the rate this update used, read back for the logs
      metrics["lr"] = applied
    if penalty is not None:
      metrics["explanation_loss"] = penalty  # included in "loss"
    new_state = state.replace(step=state.step + 1, params=freeze.merge(trainable, frozen),
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, metrics

  return step


def make_eval_step(model: nn.Module, *, features_input_shape=None, logit_order=None) -> Callable:
  """-> step(variables, batch) -> (metric sums, logits). Padded examples have valid 0.
  logit_order: the model's output index of each of the data's classes, where the data
  orders the same classes differently (another source of the classes it was trained on)."""

  def step(variables, batch):
    if features_input_shape is not None:
      logits = taps.apply_head(model, variables, batch["image"], features_input_shape)
    else:
      logits = model.apply(variables, batch["image"], train=False)
    if logit_order is not None:
      logits = logits[:, logit_order]
    weights = batch.get("valid", jnp.ones(logits.shape[0]))
    return classification_metrics(logits, batch["label"], weights), logits

  return step


def jit_train_step(step, mesh_shardings):
  """jit with the state replicated (and donated) and the batch sharded on its first axis."""
  replicated, batch_sharded = mesh_shardings
  return jax.jit(step, in_shardings=(replicated, batch_sharded),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


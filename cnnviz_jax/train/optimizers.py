"""Optimizer from a config: an optax chain of clipping, weight decay and the update rule.

It is built for the trainable parameters only (frozen leaves are None in the tree
it sees, see freeze.split), so frozen parameters carry no optimizer state at all.
The learning rate is injected (optax.inject_hyperparams): the schedule runs on the
optimizer's own count, which starts at 0 at every `init` (so each stage's schedule
starts at its own step 0, and a restored state continues it), and the rate each update
applied is kept in the state, where `applied_learning_rate` reads it for the logs.
"""
import jax
import ml_collections
import optax

from cnnviz_jax.errors import check_one_of

NAMES = ("sgd", "adam", "adamw", "radam", "rmsprop")


def decay_mask(params):
  """Weight decay on kernels only: never on biases or BatchNorm scales (ndim ≤ 1)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _rule(config: ml_collections.ConfigDict, lr) -> optax.GradientTransformation:
  name = config.name
  if name == "sgd":
    return optax.sgd(lr, momentum=config.get("momentum", 0.0) or None,
                     nesterov=config.get("nesterov", False))
  if name in ("adam", "adamw", "radam"):
    kwargs = dict(b1=config.get("b1", 0.9), b2=config.get("b2", 0.999), eps=config.get("eps", 1e-8))
    if name == "adamw":  # decoupled decay inside the rule, masked
      return optax.adamw(lr, weight_decay=config.get("weight_decay", 0.0), mask=decay_mask, **kwargs)
    return getattr(optax, name)(lr, **kwargs)
  # rmsprop (make checked the name), with Keras' defaults: rho 0.9, eps 1e-7
  return optax.rmsprop(lr, decay=config.get("rho", 0.9), eps=config.get("eps", 1e-7),
                       momentum=config.get("momentum", 0.0) or None)


def make(config: ml_collections.ConfigDict, lr_schedule) -> optax.GradientTransformation:
  """config: name, grad_clip, weight_decay (+ the rule's own fields); lr_schedule: a
  float or an optax schedule of this optimizer's own update count."""
  check_one_of(config.name, NAMES, "optimizer")  # now, not at the first init
  return optax.inject_hyperparams(_chain, static_args="config")(config, lr_schedule)


def applied_learning_rate(opt_state) -> jax.Array | None:
  """The learning rate the last update applied (at init: the rate of the first update);
  None for an optimizer not built by `make`."""
  hyperparams = getattr(opt_state, "hyperparams", None)
  return None if hyperparams is None else hyperparams["learning_rate"]


def _chain(config: ml_collections.ConfigDict, learning_rate) -> optax.GradientTransformation:
  parts = []
  if config.get("grad_clip"):
    parts.append(optax.clip_by_global_norm(config.grad_clip))
  if config.get("weight_decay") and config.name != "adamw":  # L2 added to the gradient
    parts.append(optax.add_decayed_weights(config.weight_decay, mask=decay_mask))
  parts.append(_rule(config, learning_rate))
  return optax.chain(*parts)

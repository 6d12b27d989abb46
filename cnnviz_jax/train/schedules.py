"""Learning-rate schedules named in configs, all optax schedules of the step.

'constant', 'warmup_cosine', 'piecewise' (step decay at epoch boundaries) and
'cyclic' (the triangular cyclical LR of Smith 2017: linear up
from min to max over `step_size` steps, down again, repeat).
"""
import jax.numpy as jnp
import ml_collections
import optax

from cnnviz_jax.errors import check_one_of

NAMES = ("constant", "warmup_cosine", "piecewise", "cyclic")


def triangular_cyclic(min_lr: float, max_lr: float, step_size: int) -> optax.Schedule:
  """Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017 ('triangular')."""
  def schedule(step):
    cycle_position = jnp.abs(jnp.mod(step, 2 * step_size) / step_size - 1.0)  # 1 → 0 → 1
    return min_lr + (max_lr - min_lr) * (1.0 - cycle_position)
  return schedule


def make(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
         ) -> optax.Schedule:
  """config: name, lr, warmup_epochs, boundaries_epochs, decay_factor, min_lr, max_lr,
  step_size_epochs (each used only by the schedules that need it)."""
  name = config.name
  check_one_of(name, NAMES, "schedule")
  if name == "constant":
    return optax.constant_schedule(config.lr)
  if name == "warmup_cosine":
    warmup = int(config.get("warmup_epochs", 0) * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, max(total_steps, warmup + 1),
                                              end_value=config.get("end_lr", 0.0))
  if name == "piecewise":
    boundaries = {int(e * steps_per_epoch): config.get("decay_factor", 0.1)
                  for e in config.boundaries_epochs}
    return optax.piecewise_constant_schedule(config.lr, boundaries)
  step_size = max(1, int(config.get("step_size_epochs", 2) * steps_per_epoch))  # cyclic
  return triangular_cyclic(config.min_lr, config.max_lr, step_size)

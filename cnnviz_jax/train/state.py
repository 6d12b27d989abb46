"""The training state: one pytree that jit donates, orbax saves and sharding replicates."""
from typing import Any

import flax
import jax
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # global step across stages; the data position is a function of it
  params: Any
  batch_stats: Any  # {} for models without BatchNorm
  opt_state: optax.OptState
  rng: jax.Array  # dropout key; folded with the step, so a resumed run draws the same masks

  def variables(self) -> dict:
    return {"params": self.params, **({"batch_stats": self.batch_stats} if self.batch_stats else {})}

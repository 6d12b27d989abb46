"""Building blocks shared by the plain conv-net families (VGG, the small CNNs)."""
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp


class ConvAct(nn.Module):
  """Conv (torch-style explicit padding), optional BatchNorm, then the activation."""
  features: int
  act: Callable
  batch_norm: bool = False
  kernel_size: int = 3
  padding: int = 1
  use_bias: bool = True  # torchvision's vgg*_bn keeps it; our own nets drop it before BN
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    p = self.padding
    x = nn.Conv(self.features, (self.kernel_size,) * 2, padding=((p, p), (p, p)),
                use_bias=self.use_bias, dtype=self.dtype, name="conv")(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, name="bn")(x)
    return self.act(x)


class MaxPool(nn.Module):
  """Non-overlapping max-pool; floor on odd sizes, as Keras and torch."""
  window: int = 2

  def __call__(self, x):
    return nn.max_pool(x, (self.window, self.window), (self.window, self.window))

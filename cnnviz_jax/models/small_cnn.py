"""Small from-scratch CNNs of the seeds, and the demo's BatchNorm net.

- 'small_cnn': seeds 001/003 (Chollet's cats-vs-dogs net): 3×3 valid convs
  32-64-128-128, each followed by a 2×2 max-pool, Flatten, dense 512 + act +
  dropout (0.5 with `dropout=0.5`, none by default), classes. Made for 150×150.
- 'selu_cnn': a 5-conv SELU net (Klambauer et al. 2017), dense 128 head with dropout.
- 'small_cnn_bn': conv-BN-act ×4 (16-32-64-96), pooling after the first two, global
  average pool + linear: trains in seconds on the synthetic shapes (8×8 map at 32 px).
Taps: 'block{b}_conv1' (conv + act) and 'block{b}' (after the block's pool, if any).
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.layers import ConvAct, MaxPool, window_max_pool
from cnnviz_jax.models.registry import register


class SmallCNN(nn.Module):
  filters: Sequence[int]
  pool_after: Sequence[bool]
  num_classes: int
  head: heads.HeadSpec
  act: Callable = nn.relu
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)
  padding: int = 1
  batch_norm: bool = False
  dtype: Any = jnp.float32
  input_size: int = 150

  @nn.compact
  def __call__(self, x, train: bool = False):
    for b, (width, pool) in enumerate(zip(self.filters, self.pool_after), start=1):
      # A bias before BatchNorm has a zero gradient: only rounding noise, which Adam
      # would amplify into a random walk, so BN nets go without it.
      x = ConvAct(width, self.act, self.batch_norm, padding=self.padding,
                  use_bias=not self.batch_norm, dtype=self.dtype,
                  name=f"block{b}_conv1")(x, train=train)
      if pool:
        x = MaxPool(max_pool=self.max_pool, name=f"block{b}")(x)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


@register("small_cnn")
def small_cnn(num_classes=1000, head=None, dropout: float = 0.0,
              filters=(32, 64, 128, 128), **options):
  spec = heads.head_spec(head, heads.HeadSpec("dense", hidden=512, dropout=dropout,
                                              pool="flatten"))
  return SmallCNN(filters=tuple(filters), pool_after=(True,) * len(filters),
                  num_classes=num_classes, head=spec, padding=0, **options)


@register("selu_cnn")
def selu_cnn(num_classes=1000, head=None, dropout: float = 0.3,
             filters=(32, 32, 64, 64, 128), **options):
  spec = heads.head_spec(head, heads.HeadSpec("dense", hidden=128, dropout=dropout,
                                              pool="flatten"))
  options.setdefault("act", nn.selu)
  options.setdefault("input_size", 224)
  return SmallCNN(filters=tuple(filters), pool_after=(True,) * len(filters),
                  num_classes=num_classes, head=spec, **options)


@register("small_cnn_bn")
def small_cnn_bn(num_classes=1000, head=None, filters=(16, 32, 64, 96), **options):
  spec = heads.head_spec(head, heads.HeadSpec("linear"))
  pool_after = tuple(i < 2 for i in range(len(filters)))
  options.setdefault("input_size", 32)
  return SmallCNN(filters=tuple(filters), pool_after=pool_after, num_classes=num_classes,
                  head=spec, batch_norm=True, **options)

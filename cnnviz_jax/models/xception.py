"""Xception as keras.applications builds it.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
SeparableConv2D is a depthwise 3×3 ('depthwise', layers.DepthwiseConv)
then a pointwise 1×1 ('pointwise'), neither with a bias; BN eps 1e-3 with gamma.
Taps: 'block1'…'block14' (Keras' layer-name prefixes): the entry flow's blocks end
at their residual add, block14 at its last ReLU; head: 'head' (global average pool
+ 'predictions'). Inputs ≥ 71 px; ImageNet weights expect 299 and [-1, 1].
"""
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.layers import (DepthwiseConv, KerasConvBN, max_pool, tf_padding,
                                      window_max_pool)
from cnnviz_jax.models.registry import register


class SeparableConvBN(nn.Module):
  """keras.layers.SeparableConv2D(features, 3, padding='same', use_bias=False) + BN."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = DepthwiseConv((3, 3), (1, 1), tf_padding(x, (3, 3), (1, 1), "same"), self.dtype,
                      name="depthwise")(x)
    x = nn.Conv(self.features, (1, 1), padding="VALID", use_bias=False, dtype=self.dtype,
                name="pointwise")(x)
    return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                        dtype=self.dtype, name="bn")(x)


class EntryBlock1(nn.Module):
  """Two plain 3×3 convs, 'valid', the first with stride 2."""
  act: Callable
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = KerasConvBN(32, (3, 3), self.act, 2, "valid", bn_scale=True, dtype=self.dtype,
                    name="conv1")(x, train)
    return KerasConvBN(64, (3, 3), self.act, 1, "valid", bn_scale=True, dtype=self.dtype,
                       name="conv2")(x, train)


class Block(nn.Module):
  """[act] sepconv [act sepconv …], then + the shortcut (strided 1×1 conv when pooling).

  widths: the separable convs' features; pool: a strided 3×3 max-pool and a projection
  shortcut (blocks 2-4, 13) rather than the identity (middle flow, blocks 5-12).
  """
  widths: tuple[int, ...]
  act: Callable
  pool: bool = False
  first_act: bool = True  # block2 follows block1's ReLU directly
  dtype: Any = jnp.float32
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)

  @nn.compact
  def __call__(self, x, train: bool = False):
    shortcut = x
    if self.pool:
      shortcut = KerasConvBN(self.widths[-1], (1, 1), None, 2, "same", bn_scale=True,
                             dtype=self.dtype, name="residual")(x, train)
    for i, features in enumerate(self.widths, start=1):
      if i > 1 or self.first_act:
        x = self.act(x)
      x = SeparableConvBN(features, self.dtype, name=f"sepconv{i}")(x, train)
    if self.pool:
      x = max_pool(x, 3, 2, "same", self.max_pool)
    return x + shortcut


class ExitBlock14(nn.Module):
  """sepconv 1536 + act, sepconv 2048 + act."""
  act: Callable
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    for i, features in enumerate((1536, 2048), start=1):
      x = self.act(SeparableConvBN(features, self.dtype, name=f"sepconv{i}")(x, train))
    return x


# (widths, pool, first_act) of block2…block13
BLOCKS = ((((128, 128), True, False), ((256, 256), True, True), ((728, 728), True, True))
          + (((728, 728, 728), False, True),) * 8 + (((728, 1024), True, True),))


class Xception(nn.Module):
  """Taps: 'block1'…'block14'; head: 'head'."""
  num_classes: int = 1000
  head: heads.HeadSpec = heads.HeadSpec()
  act: Callable = nn.relu
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)
  dtype: Any = jnp.float32
  input_size: int = 299

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = EntryBlock1(self.act, self.dtype, name="block1")(x, train)
    for b, (widths, pool, first_act) in enumerate(BLOCKS, start=2):
      x = Block(widths, self.act, pool, first_act, self.dtype, self.max_pool,
                name=f"block{b}")(x, train)
    x = ExitBlock14(self.act, self.dtype, name="block14")(x, train)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


@register("xception")
def xception(num_classes=1000, head=None, **options):
  return Xception(num_classes=num_classes,
                  head=heads.head_spec(head, heads.HeadSpec("linear")), **options)

"""InceptionV3 as keras.applications builds it.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.
Every conv is Keras' conv2d_bn (no bias, BN eps 1e-3 without gamma, ReLU); 'same' and
'valid' padding are explicit, as TF computes them. Taps: 'stem' (after the second
max-pool), 'mixed0'…'mixed10' (Keras' concatenations of the same names); head: 'head'
(global average pool + 'predictions', Keras' classifier). Branch names follow
torchvision's Inception3. Inputs ≥ 75 px; ImageNet weights expect 299 and [-1, 1].
"""
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.layers import KerasConvBN, avg_pool, max_pool, window_max_pool
from cnnviz_jax.models.registry import register


class InceptionBlock(nn.Module):
  """Base of the Inception blocks: `self.conv(features, kernel, name=…)` is conv2d_bn;
  `self.max_pool` the model's max-pool (x, window, stride, padding)."""
  act: Callable
  dtype: Any = jnp.float32
  max_pool: Callable = window_max_pool

  def conv(self, features, kernel, name, strides=1, padding="same"):
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    return KerasConvBN(features, kernel, self.act, strides, padding, dtype=self.dtype, name=name)


class Stem(InceptionBlock):
  @nn.compact
  def __call__(self, x, train: bool = False):
    x = self.conv(32, 3, "conv1", strides=2, padding="valid")(x, train)
    x = self.conv(32, 3, "conv2", padding="valid")(x, train)
    x = max_pool(self.conv(64, 3, "conv3")(x, train), pool=self.max_pool)
    x = self.conv(80, 1, "conv4", padding="valid")(x, train)
    return max_pool(self.conv(192, 3, "conv5", padding="valid")(x, train),
                    pool=self.max_pool)


class InceptionA(InceptionBlock):  # mixed0-2, 35×35 at 299 px
  pool_features: int = 32

  @nn.compact
  def __call__(self, x, train: bool = False):
    b1 = self.conv(64, 1, "branch1x1")(x, train)
    b5 = self.conv(48, 1, "branch5x5_1")(x, train)
    b5 = self.conv(64, 5, "branch5x5_2")(b5, train)
    b3 = self.conv(64, 1, "branch3x3dbl_1")(x, train)
    b3 = self.conv(96, 3, "branch3x3dbl_2")(b3, train)
    b3 = self.conv(96, 3, "branch3x3dbl_3")(b3, train)
    bp = self.conv(self.pool_features, 1, "branch_pool")(avg_pool(x), train)
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(InceptionBlock):  # mixed3: 35 -> 17
  @nn.compact
  def __call__(self, x, train: bool = False):
    b3 = self.conv(384, 3, "branch3x3", strides=2, padding="valid")(x, train)
    bd = self.conv(64, 1, "branch3x3dbl_1")(x, train)
    bd = self.conv(96, 3, "branch3x3dbl_2")(bd, train)
    bd = self.conv(96, 3, "branch3x3dbl_3", strides=2, padding="valid")(bd, train)
    return jnp.concatenate([b3, bd, max_pool(x, pool=self.max_pool)], axis=-1)


class InceptionC(InceptionBlock):  # mixed4-7, 17×17: factorized 7×7 convs
  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False):
    c = self.channels_7x7
    b1 = self.conv(192, 1, "branch1x1")(x, train)
    b7 = self.conv(c, 1, "branch7x7_1")(x, train)
    b7 = self.conv(c, (1, 7), "branch7x7_2")(b7, train)
    b7 = self.conv(192, (7, 1), "branch7x7_3")(b7, train)
    bd = self.conv(c, 1, "branch7x7dbl_1")(x, train)
    for i, (features, kernel) in enumerate(
        [(c, (7, 1)), (c, (1, 7)), (c, (7, 1)), (192, (1, 7))], start=2):
      bd = self.conv(features, kernel, f"branch7x7dbl_{i}")(bd, train)
    bp = self.conv(192, 1, "branch_pool")(avg_pool(x), train)
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(InceptionBlock):  # mixed8: 17 -> 8
  @nn.compact
  def __call__(self, x, train: bool = False):
    b3 = self.conv(192, 1, "branch3x3_1")(x, train)
    b3 = self.conv(320, 3, "branch3x3_2", strides=2, padding="valid")(b3, train)
    b7 = self.conv(192, 1, "branch7x7x3_1")(x, train)
    b7 = self.conv(192, (1, 7), "branch7x7x3_2")(b7, train)
    b7 = self.conv(192, (7, 1), "branch7x7x3_3")(b7, train)
    b7 = self.conv(192, 3, "branch7x7x3_4", strides=2, padding="valid")(b7, train)
    return jnp.concatenate([b3, b7, max_pool(x, pool=self.max_pool)], axis=-1)


class InceptionE(InceptionBlock):  # mixed9-10, 8×8: branches that split into 1×3 and 3×1
  @nn.compact
  def __call__(self, x, train: bool = False):
    b1 = self.conv(320, 1, "branch1x1")(x, train)
    b3 = self.conv(384, 1, "branch3x3_1")(x, train)
    b3 = jnp.concatenate([self.conv(384, (1, 3), "branch3x3_2a")(b3, train),
                          self.conv(384, (3, 1), "branch3x3_2b")(b3, train)], axis=-1)
    bd = self.conv(448, 1, "branch3x3dbl_1")(x, train)
    bd = self.conv(384, 3, "branch3x3dbl_2")(bd, train)
    bd = jnp.concatenate([self.conv(384, (1, 3), "branch3x3dbl_3a")(bd, train),
                          self.conv(384, (3, 1), "branch3x3dbl_3b")(bd, train)], axis=-1)
    bp = self.conv(192, 1, "branch_pool")(avg_pool(x), train)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


# (block, options) of mixed0…mixed10, in order
BLOCKS = ((InceptionA, {"pool_features": 32}), (InceptionA, {"pool_features": 64}),
          (InceptionA, {"pool_features": 64}), (InceptionB, {}),
          (InceptionC, {"channels_7x7": 128}), (InceptionC, {"channels_7x7": 160}),
          (InceptionC, {"channels_7x7": 160}), (InceptionC, {"channels_7x7": 192}),
          (InceptionD, {}), (InceptionE, {}), (InceptionE, {}))


class InceptionV3(nn.Module):
  """Taps: 'stem', 'mixed0'…'mixed10'; head: 'head'."""
  num_classes: int = 1000
  head: heads.HeadSpec = heads.HeadSpec()
  act: Callable = nn.relu
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)
  dtype: Any = jnp.float32
  input_size: int = 299

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Stem(self.act, self.dtype, self.max_pool, name="stem")(x, train)
    for i, (cls, options) in enumerate(BLOCKS):
      x = cls(self.act, self.dtype, self.max_pool, **options, name=f"mixed{i}")(x, train)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


@register("inception_v3")
def inception_v3(num_classes=1000, head=None, **options):
  return InceptionV3(num_classes=num_classes,
                     head=heads.head_spec(head, heads.HeadSpec("linear")), **options)

"""Inception-ResNet-v2 as keras.applications builds it.

Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections
on Learning", AAAI 2017. Units are Keras' conv2d_bn (no bias, BN eps 1e-3 without gamma,
ReLU); each residual block concatenates its branches, projects them back with a biased
1×1 'conv' and adds `scale ×` that to its input (Keras' CustomScaleLayer), then the
activation (none after block8_10). Taps, named as Keras' layers: 'stem', 'mixed_5b',
'block35_1'…'block35_10', 'mixed_6a', 'block17_1'…'block17_20', 'mixed_7a',
'block8_1'…'block8_10', 'conv_7b'; head: 'head'. Inputs ≥ 75 px; ImageNet weights
expect 299 and [-1, 1].
"""
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.inception_v3 import InceptionBlock, Stem
from cnnviz_jax.models.layers import KerasConvBN, avg_pool, max_pool, window_max_pool
from cnnviz_jax.models.registry import register


class Mixed5b(InceptionBlock):  # Inception-A, 35×35×320 at 299 px
  @nn.compact
  def __call__(self, x, train: bool = False):
    b0 = self.conv(96, 1, "branch_0")(x, train)
    b1 = self.conv(64, 5, "branch_1_1")(self.conv(48, 1, "branch_1_0")(x, train), train)
    b2 = self.conv(64, 1, "branch_2_0")(x, train)
    b2 = self.conv(96, 3, "branch_2_2")(self.conv(96, 3, "branch_2_1")(b2, train), train)
    bp = self.conv(64, 1, "branch_pool")(avg_pool(x), train)
    return jnp.concatenate([b0, b1, b2, bp], axis=-1)


# block type -> its branches, each a chain of (features, kernel)
BRANCHES = {
    "block35": (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3))),
    "block17": (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1)))),
    "block8": (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1)))),
}


class ResidualBlock(InceptionBlock):
  """x + scale · conv1x1(concat(branches)), then act (unless last)."""
  kind: str = "block35"
  scale: float = 0.17
  last: bool = False  # block8_10: no activation after the add

  @nn.compact
  def __call__(self, x, train: bool = False):
    branches = []
    for b, chain in enumerate(BRANCHES[self.kind]):
      y = x
      for i, (features, kernel) in enumerate(chain):
        name = f"branch_{b}" if len(chain) == 1 else f"branch_{b}_{i}"
        y = self.conv(features, kernel, name)(y, train)
      branches.append(y)
    up = nn.Conv(x.shape[-1], (1, 1), padding="VALID", dtype=self.dtype, name="conv")(
        jnp.concatenate(branches, axis=-1))
    x = x + up * self.scale
    return x if self.last else self.act(x)


class Mixed6a(InceptionBlock):  # Reduction-A: 35 -> 17
  @nn.compact
  def __call__(self, x, train: bool = False):
    b0 = self.conv(384, 3, "branch_0", strides=2, padding="valid")(x, train)
    b1 = self.conv(256, 3, "branch_1_1")(self.conv(256, 1, "branch_1_0")(x, train), train)
    b1 = self.conv(384, 3, "branch_1_2", strides=2, padding="valid")(b1, train)
    return jnp.concatenate([b0, b1, max_pool(x, pool=self.max_pool)], axis=-1)


class Mixed7a(InceptionBlock):  # Reduction-B: 17 -> 8
  @nn.compact
  def __call__(self, x, train: bool = False):
    b0 = self.conv(256, 1, "branch_0_0")(x, train)
    b0 = self.conv(384, 3, "branch_0_1", strides=2, padding="valid")(b0, train)
    b1 = self.conv(256, 1, "branch_1_0")(x, train)
    b1 = self.conv(288, 3, "branch_1_1", strides=2, padding="valid")(b1, train)
    b2 = self.conv(288, 3, "branch_2_1")(self.conv(256, 1, "branch_2_0")(x, train), train)
    b2 = self.conv(320, 3, "branch_2_2", strides=2, padding="valid")(b2, train)
    return jnp.concatenate([b0, b1, b2, max_pool(x, pool=self.max_pool)], axis=-1)


# the stages after mixed_5b: (reduction block before them, block type, count, scale)
STAGES = ((None, "block35", 10, 0.17), (("mixed_6a", Mixed6a), "block17", 20, 0.1),
          (("mixed_7a", Mixed7a), "block8", 10, 0.2))


class InceptionResNetV2(nn.Module):
  """Taps: 'stem', 'mixed_5b', 'block35_*', 'mixed_6a', 'block17_*', 'mixed_7a',
  'block8_*', 'conv_7b'; head: 'head'."""
  num_classes: int = 1000
  head: heads.HeadSpec = heads.HeadSpec()
  act: Callable = nn.relu
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)
  dtype: Any = jnp.float32
  input_size: int = 299

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Stem(self.act, self.dtype, self.max_pool, name="stem")(x, train)
    x = Mixed5b(self.act, self.dtype, self.max_pool, name="mixed_5b")(x, train)
    for reduction, kind, count, scale in STAGES:
      if reduction is not None:
        name, cls = reduction
        x = cls(self.act, self.dtype, self.max_pool, name=name)(x, train)
      for i in range(1, count + 1):
        last = kind == "block8" and i == count  # Keras: scale 1, no activation
        x = ResidualBlock(self.act, self.dtype, self.max_pool, kind, 1.0 if last else scale,
                          last, name=f"{kind}_{i}")(x, train)
    x = KerasConvBN(1536, (1, 1), self.act, dtype=self.dtype, name="conv_7b")(x, train)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


@register("inception_resnet_v2")
def inception_resnet_v2(num_classes=1000, head=None, **options):
  return InceptionResNetV2(num_classes=num_classes,
                           head=heads.head_spec(head, heads.HeadSpec("linear")), **options)

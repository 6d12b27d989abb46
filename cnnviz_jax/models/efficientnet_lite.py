"""EfficientNet-Lite0…4 as Google's efficientnet_lite_builder (TF) builds them.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019; the Lite variants drop squeeze-excitation, use ReLU6 (for quantization) and
leave the stem (32), the top (1280) and the first and last stages' depths unscaled.
An MBConv block: expand 1×1 (if the ratio is not 1) → depthwise k×k (the stride) →
project 1×1 (linear), plus the input when the shape is kept (stochastic depth in
training: rate 0.2·i/n for the i-th of n blocks, the reference's drop_connect).
Convs have no bias; BN eps 1e-3, momentum 0.99; TF 'same' padding made explicit.
Taps: 'stem', 'block1'…'block7' (the seven stages), 'top' (1×1 conv to 1280 + BN +
ReLU6, the last spatial layer); head: 'head' (global average pool, dropout,
'predictions'). ImageNet weights expect (x − 127) / 128 ('lite') at 224…300 px.
Guided backprop swaps `act` too: ReLU6's guided rule is 1[0 < x < 6] · ReLU(dy), which is
what Captum computes once its ReLU hooks see ReLU6 (as shipped they skip nn.ReLU6 and
return the plain gradient; tests/explain/test_real_photos.py).
"""
import math
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.layers import KerasConvBN
from cnnviz_jax.models.registry import register

# (repeats, kernel, stride, expand ratio, output width) of the seven stages (B0 = Lite0)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# width, depth, resolution, dropout (efficientnet_lite_builder.efficientnet_lite_params)
PARAMS = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3),
          3: (1.2, 1.4, 280, 0.3), 4: (1.4, 1.8, 300, 0.3)}
STEM_WIDTH, TOP_WIDTH = 32, 1280


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
  """Width scaling, rounded to a multiple of 8 and never more than 10% down (TF's rule)."""
  scaled = filters * width
  rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * scaled else rounded


def stage_repeats(depth: float) -> tuple[int, ...]:
  """Blocks per stage: ceil(depth · repeats), the first and last stage unscaled (Lite)."""
  last = len(STAGES) - 1
  return tuple(r if i in (0, last) else math.ceil(depth * r)
               for i, (r, *_) in enumerate(STAGES))


class MBConv(nn.Module):
  """Inverted residual block without squeeze-excitation."""
  features: int
  kernel: int
  stride: int
  expand: int
  act: Callable
  drop_rate: float = 0.0  # stochastic depth (training only)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    x = inputs
    if self.expand != 1:
      x = KerasConvBN(inputs.shape[-1] * self.expand, (1, 1), self.act, bn_scale=True,
                      dtype=self.dtype, name="expand")(x, train)
    x = KerasConvBN(x.shape[-1], (self.kernel,) * 2, self.act, self.stride, bn_scale=True,
                    depthwise=True, dtype=self.dtype, name="depthwise")(x, train)
    x = KerasConvBN(self.features, (1, 1), None, bn_scale=True, dtype=self.dtype,
                    name="project")(x, train)
    if self.stride == 1 and inputs.shape[-1] == self.features:
      # drop whole examples' residual branches: one draw per example, scaled by 1/keep
      x = nn.Dropout(self.drop_rate, broadcast_dims=(1, 2, 3), deterministic=not train)(x)
      x = x + inputs
    return x


class Stage(nn.Module):
  """One stage: MBConv blocks 'mbconv0'… from (features, kernel, stride, expand, drop rate)."""
  blocks: tuple[tuple[int, int, int, int, float], ...]
  act: Callable
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    for j, (features, kernel, stride, expand, drop_rate) in enumerate(self.blocks):
      x = MBConv(features, kernel, stride, expand, self.act, drop_rate, self.dtype,
                 name=f"mbconv{j}")(x, train)
    return x


class EfficientNetLite(nn.Module):
  """Taps: 'stem', 'block1'…'block7', 'top'; head: 'head'."""
  width: float = 1.0
  depth: float = 1.0
  num_classes: int = 1000
  head: heads.HeadSpec = heads.HeadSpec()
  act: Callable = nn.relu6
  drop_connect_rate: float = 0.2
  dtype: Any = jnp.float32
  input_size: int = 224

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = KerasConvBN(STEM_WIDTH, (3, 3), self.act, 2, bn_scale=True, dtype=self.dtype,
                    name="stem")(x, train)
    repeats = stage_repeats(self.depth)
    index, total = 0, sum(repeats)
    for s, ((_, kernel, stride, expand, width), n) in enumerate(zip(STAGES, repeats)):
      blocks = tuple((round_filters(width, self.width), kernel, stride if j == 0 else 1, expand,
                      self.drop_connect_rate * (index + j) / total) for j in range(n))
      x = Stage(blocks, self.act, self.dtype, name=f"block{s + 1}")(x, train)
      index += n
    x = KerasConvBN(TOP_WIDTH, (1, 1), self.act, bn_scale=True, dtype=self.dtype,
                    name="top")(x, train)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.float32)


def _factory(variant: int):
  width, depth, size, dropout = PARAMS[variant]

  def make(num_classes=1000, head=None, **options):
    options.setdefault("input_size", size)
    return EfficientNetLite(width=width, depth=depth, num_classes=num_classes,
                            head=heads.head_spec(head, heads.HeadSpec("linear",
                                                                      input_dropout=dropout)),
                            **options)
  return make


for _variant in PARAMS:
  register(f"efficientnet_lite{_variant}")(_factory(_variant))

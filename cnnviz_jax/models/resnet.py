"""ResNet-18…152 in the torchvision layout (v1.5) and Keras' ResNet50 (v1).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
torchvision (v1.5) strides on the 3×3 conv of a bottleneck, has no conv biases and
BN eps 1e-5; keras.applications.ResNet50 (v1) strides on the first 1×1, has conv
biases and BN eps 1.001e-5. Padding is explicit (torch-style), never 'SAME', so
converted weights give the source framework's numbers.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads, layers
from cnnviz_jax.models.registry import register


def _pad(p: int):
  return ((p, p), (p, p))


class _Stem(nn.Module):
  conv: Callable
  norm: Callable
  act: Callable
  keras_pool: bool
  max_pool: Callable = layers.window_max_pool

  @nn.compact
  def __call__(self, x):
    x = self.act(self.norm(name="bn1")(self.conv(64, (7, 7), (2, 2), padding=_pad(3),
                                                 name="conv1")(x)))
    if self.keras_pool:  # keras: ZeroPadding2D(1) then a valid max-pool
      return self.max_pool(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 3, 2)
    return self.max_pool(x, 3, 2, _pad(1))  # pads with -inf, as torch


class BasicBlock(nn.Module):
  features: int
  stride: int
  conv: Callable
  norm: Callable
  act: Callable
  expansion = 1

  @nn.compact
  def __call__(self, x):
    y = self.act(self.norm(name="bn1")(
        self.conv(self.features, (3, 3), self.stride, padding=_pad(1), name="conv1")(x)))
    y = self.norm(name="bn2")(self.conv(self.features, (3, 3), padding=_pad(1), name="conv2")(y))
    if self.stride != 1 or x.shape[-1] != self.features:
      x = self.norm(name="downsample_bn")(
          self.conv(self.features, (1, 1), self.stride, padding=_pad(0),
                    name="downsample_conv")(x))
    return self.act(x + y)


class Bottleneck(nn.Module):
  features: int
  stride: int
  conv: Callable
  norm: Callable
  act: Callable
  stride_on_1x1: bool = False  # True: v1 (Keras, original paper); False: v1.5 (torchvision)
  expansion = 4

  @nn.compact
  def __call__(self, x):
    s1, s3 = (self.stride, 1) if self.stride_on_1x1 else (1, self.stride)
    y = self.act(self.norm(name="bn1")(
        self.conv(self.features, (1, 1), s1, padding=_pad(0), name="conv1")(x)))
    y = self.act(self.norm(name="bn2")(
        self.conv(self.features, (3, 3), s3, padding=_pad(1), name="conv2")(y)))
    y = self.norm(name="bn3")(
        self.conv(self.features * 4, (1, 1), padding=_pad(0), name="conv3")(y))
    if self.stride != 1 or x.shape[-1] != self.features * 4:
      x = self.norm(name="downsample_bn")(
          self.conv(self.features * 4, (1, 1), self.stride, padding=_pad(0),
                    name="downsample_conv")(x))
    return self.act(x + y)


class _Stage(nn.Module):
  block: Any
  num_blocks: int
  features: int
  stride: int
  block_kwargs: dict

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_blocks):
      x = self.block(features=self.features, stride=self.stride if i == 0 else 1,
                     name=f"block{i}", **self.block_kwargs)(x)
    return x


class ResNet(nn.Module):
  """Taps: 'stem', 'layer1'…'layer4'; head: 'head' (global average pool + linear)."""
  stage_sizes: Sequence[int]
  block: Any
  num_classes: int = 1000
  head: heads.HeadSpec = heads.HeadSpec()
  act: Callable = nn.relu
  max_pool: Callable = layers.window_max_pool  # the stem's; (x, window, stride, padding)
  keras_v1: bool = False
  dtype: Any = jnp.float32
  input_size: int = 224

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv = functools.partial(nn.Conv, use_bias=self.keras_v1, dtype=self.dtype,
                             conv_general_dilated=layers.conv_or_dot)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.99 if self.keras_v1 else 0.9,
                             epsilon=1.001e-5 if self.keras_v1 else 1e-5, dtype=self.dtype)
    block_kwargs = dict(conv=conv, norm=norm, act=self.act)
    if self.keras_v1:
      block_kwargs["stride_on_1x1"] = True
    x = _Stem(conv, norm, self.act, keras_pool=self.keras_v1, max_pool=self.max_pool,
              name="stem")(x)
    for i, size in enumerate(self.stage_sizes):
      x = _Stage(self.block, size, 64 * 2**i, 1 if i == 0 else 2, block_kwargs,
                 name=f"layer{i + 1}")(x)
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
           152: (3, 8, 36, 3)}


def _factory(depth: int, keras_v1: bool = False):
  def make(num_classes=1000, head=None, **options):
    block = BasicBlock if depth < 50 else Bottleneck
    return ResNet(stage_sizes=_STAGES[depth], block=block, num_classes=num_classes,
                  head=heads.head_spec(head, heads.HeadSpec("linear")), keras_v1=keras_v1,
                  **options)
  return make


for _depth in _STAGES:
  register(f"resnet{_depth}")(_factory(_depth))
register("resnet50_keras")(_factory(50, keras_v1=True))

"""VGG-11/13/16/19 (and _bn) in the torchvision layout, and Keras' VGG16/VGG19.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015. Layer names follow keras.applications: 'block{b}_conv{i}'
(conv [+BN] + act) and 'block{b}' (after the block's max-pool). The torchvision
variant keeps its adaptive 7×7 average pool before the classifier, so any input
≥ 32 px gives torchvision's answer; Keras' VGG needs 224×224 for its Flatten.
Flatten is NHWC here; the converter permutes torchvision's NCHW-ordered fc1.
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.layers import ConvAct, MaxPool, window_max_pool
from cnnviz_jax.models.registry import register

_CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


def adaptive_avg_pool(x, out_size: int):
  """torch.nn.AdaptiveAvgPool2d for NHWC: bin i spans [floor(i*n/o), ceil((i+1)*n/o))."""
  def pool_axis(x, axis):
    n = x.shape[axis]
    if n == out_size:
      return x
    bins = [jnp.mean(jnp.take(x, jnp.arange((i * n) // out_size, -((-(i + 1) * n) // out_size)),
                              axis=axis), axis=axis, keepdims=True) for i in range(out_size)]
    return jnp.concatenate(bins, axis=axis)
  return pool_axis(pool_axis(x, 1), 2)


class VGGClassifier(nn.Module):
  """fc1 4096 → act → dropout → fc2 4096 → act → dropout → predictions (Flatten first)."""
  num_classes: int
  act: Callable
  dropout: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    for name in ("fc1", "fc2"):
      x = self.act(nn.Dense(4096, dtype=self.dtype, name=name)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="predictions")(x)


class VGG(nn.Module):
  """Taps: 'block1_conv1'…'block5_conv{n}', 'block1'…'block5'; head: 'head'."""
  convs_per_block: Sequence[int]
  num_classes: int = 1000
  head: heads.HeadSpec | None = None  # None: the ImageNet classifier (fc1, fc2, predictions)
  act: Callable = nn.relu
  max_pool: Callable = window_max_pool  # (x, window, stride, padding)
  batch_norm: bool = False
  adaptive_pool: bool = True  # torchvision: AdaptiveAvgPool2d(7) before the classifier
  classifier_dropout: float = 0.5  # torchvision has it, Keras does not
  widths: Sequence[int] = _WIDTHS
  dtype: Any = jnp.float32
  input_size: int = 224

  @nn.compact
  def __call__(self, x, train: bool = False):
    for b, (n, width) in enumerate(zip(self.convs_per_block, self.widths), start=1):
      for i in range(1, n + 1):
        x = ConvAct(width, self.act, self.batch_norm, dtype=self.dtype,
                    name=f"block{b}_conv{i}")(x, train=train)
      x = MaxPool(max_pool=self.max_pool, name=f"block{b}")(x)
    if self.head is None:
      if self.adaptive_pool:
        x = adaptive_avg_pool(x, 7)
      x = VGGClassifier(self.num_classes, self.act, self.classifier_dropout, self.dtype,
                        name="head")(x, train=train)
    else:
      x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))  # f64 models keep f64


def _factory(depth: int, batch_norm: bool = False, keras: bool = False):
  def make(num_classes=1000, head=None, **options):
    return VGG(convs_per_block=_CONFIGS[depth], num_classes=num_classes,
               head=None if head is None else heads.head_spec(head, heads.HeadSpec()),
               batch_norm=batch_norm, adaptive_pool=not keras,
               classifier_dropout=0.0 if keras else 0.5, **options)
  return make


for _depth in _CONFIGS:
  register(f"vgg{_depth}")(_factory(_depth))
  register(f"vgg{_depth}_bn")(_factory(_depth, batch_norm=True))
register("vgg16_keras")(_factory(16, keras=True))
register("vgg19_keras")(_factory(19, keras=True))

"""Building blocks shared by the families.

Torch-style (explicit symmetric padding: VGG, the small CNNs) and Keras-style
(TF 'same'/'valid' padding made explicit, Keras BN: the Inception family).
"""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


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


def _windows(x, window: int, stride: int, padding):
  """x padded with -inf, and the window's strided slices in row-major order: slice (i, j)
  holds the (i, j)-th element of every window (VALID: the last partial window is dropped)."""
  x = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
  out_h, out_w = (x.shape[1] - window) // stride + 1, (x.shape[2] - window) // stride + 1
  return x, [x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
             for i in range(window) for j in range(window)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def window_max_pool(x, window: int, stride: int, padding=((0, 0), (0, 0))):
  """`nn.max_pool(x, (window,) * 2, (stride,) * 2, padding)` (NHWC, square windows, explicit
  ((top, bottom), (left, right)) padding that never wins), computed as the maximum of the
  window's strided slices, with the reduce-window's gradient.

  On XLA-CPU YNNPACK's `reduce` fusion grows from a reduce-window over the neighboring
  convolutions and dense layers, and runs them slower than XLA's own kernels
  (benchmarks/README.md); elementwise maxima stay out of it.
  """
  return functools.reduce(jnp.maximum, _windows(x, window, stride, padding)[1])


def _window_max_pool_fwd(x, window, stride, padding):
  return window_max_pool(x, window, stride, padding), x


def _window_max_pool_bwd(window, stride, padding, x, g):
  """The reduce-window's gradient (select-and-scatter: each window's cotangent goes to the
  window's first maximum in row-major order) as elementwise selects and pads. XLA-CPU expands
  a select-and-scatter into a reduce-window over four full-size index iotas and a scatter,
  a large share of a small CNN's training step (benchmarks/README.md). Where windows overlap, an
  input's cotangents are summed in the windows' row-major order, as the scatter does, so the
  result is the same bit for bit."""
  padded, slices = _windows(x, window, stride, padding)
  pooled = functools.reduce(jnp.maximum, slices)
  taken = jnp.zeros(pooled.shape, bool)
  zero = jnp.zeros((), g.dtype)
  chosen = []
  for values in slices:
    first = (values == pooled) & ~taken
    taken = taken | first
    chosen.append(jnp.where(first, g, zero))
  n, h, w, c = g.shape
  if stride == window:  # tiles: interleaving them is a reshape (2x cheaper than the pads)
    rows = [jnp.stack(chosen[i * window:(i + 1) * window], axis=3) for i in range(window)]
    # the batch's sharding, where its axes are explicit (else nothing to say)
    dx = jnp.reshape(jnp.stack(rows, axis=2), (n, h * window, w * window, c),
                     out_sharding=jax.typeof(g).sharding)
    dx = jnp.pad(dx, ((0, 0), (0, padded.shape[1] - h * window),
                      (0, padded.shape[2] - w * window), (0, 0)))
  else:  # each slice back to its strided positions; the last slice holds an input's first
    # window among those it belongs to, so the sum runs from the last slice
    dx = functools.reduce(jnp.add, [
        jax.lax.pad(values, zero, ((0, 0, 0), (i, padded.shape[1] - i - stride * (h - 1) - 1,
                                               stride - 1),
                                   (j, padded.shape[2] - j - stride * (w - 1) - 1, stride - 1),
                                   (0, 0, 0)))
        for (i, j), values in reversed(list(zip(np.ndindex(window, window), chosen)))])
  (top, _), (left, _) = padding
  return (dx[:, top:top + x.shape[1], left:left + x.shape[2]],)


window_max_pool.defvjp(_window_max_pool_fwd, _window_max_pool_bwd)


def tiled_max_pool(x, window: int):
  """Non-overlapping max-pool (stride = window), floor on odd sizes."""
  return window_max_pool(x, window, window)


class MaxPool(nn.Module):
  """Non-overlapping max-pool; floor on odd sizes, as Keras and torch. max_pool: the pooling
  function (`window_max_pool`'s signature), the model's `max_pool` attribute, which the
  explainers swap for one with a modified backward pass (DeepLIFT's rule)."""
  window: int = 2
  max_pool: Callable = window_max_pool

  def __call__(self, x):
    return self.max_pool(x, self.window, self.window)


def tf_padding(x, window, stride, mode: str):
  """Keras' 'same' / 'valid' as explicit ((top, bottom), (left, right)) for NHWC x.

  TF's 'same' puts the odd pixel of padding at the bottom/right (asymmetric when
  the stride is 2), so a symmetric padding would shift every stride-2 output.
  """
  if mode not in ("same", "valid"):
    raise ValueError(f"unknown Keras padding {mode!r}; valid: 'same', 'valid'")
  pads = []
  for size, k, s in zip(x.shape[1:3], window, stride):
    total = max((-(-size // s) - 1) * s + k - size, 0) if mode == "same" else 0
    pads.append((total // 2, total - total // 2))
  return tuple(pads)


def max_pool(x, window: int = 3, stride: int = 2, mode: str = "valid",
             pool: Callable = window_max_pool):
  """keras.layers.MaxPooling2D (padding never wins: it is -inf); pool: the model's `max_pool`."""
  return pool(x, window, stride, tf_padding(x, (window,) * 2, (stride,) * 2, mode))


def avg_pool(x, window: int = 3, stride: int = 1, mode: str = "same"):
  """keras.layers.AveragePooling2D: the mean over the pixels inside the image only."""
  w, s = (window,) * 2, (stride,) * 2
  return nn.avg_pool(x, w, s, padding=tf_padding(x, w, s, mode), count_include_pad=False)


class DepthwiseConv(nn.Module):
  """A depthwise conv without bias (Keras' DepthwiseConv2D; kernel (kh, kw, 1, C), as
  nn.Conv with feature_group_count=C) computed as kh·kw shifted multiply-adds: on
  XLA-CPU 10-25× faster than a grouped convolution, forward and backward."""
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: tuple = ((0, 0), (0, 0))  # explicit ((top, bottom), (left, right))
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    (kh, kw), (sh, sw) = self.kernel_size, self.strides
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, 1, x.shape[-1]),
                        jnp.float32)
    x = jnp.pad(x.astype(self.dtype), ((0, 0), *self.padding, (0, 0)))
    kernel = kernel.astype(self.dtype)
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = 0
    for i in range(kh):
      for j in range(kw):
        out = out + x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] * kernel[i, j, 0]
    return out


class KerasConvBN(nn.Module):
  """Keras' conv2d_bn: Conv2D without bias, BatchNormalization (eps 1e-3), activation.

  The Inception family's unit. act=None leaves the activation out; bn_scale=False
  is Keras' `scale=False` (no gamma: the ReLU that follows makes it redundant);
  depthwise=True is a DepthwiseConv2D (features = the input's channels).
  """
  features: int
  kernel_size: tuple[int, int]
  act: Callable | None
  strides: int = 1
  padding: str = "same"  # Keras' mode, turned into explicit padding for the input size
  bn_scale: bool = False
  depthwise: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    strides = (self.strides,) * 2
    padding = tf_padding(x, self.kernel_size, strides, self.padding)
    if self.depthwise:
      if self.features != x.shape[-1]:
        raise ValueError(f"a depthwise conv keeps the {x.shape[-1]} channels, not {self.features}")
      x = DepthwiseConv(self.kernel_size, strides, padding, self.dtype, name="conv")(x)
    else:
      x = nn.Conv(self.features, self.kernel_size, strides, padding=padding, use_bias=False,
                  dtype=self.dtype, name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                     use_scale=self.bn_scale, dtype=self.dtype, name="bn")(x)
    return x if self.act is None else self.act(x)


def conv_or_dot(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """`lax.conv_general_dilated` for nn.Conv(conv_general_dilated=...), with 1×1 kernels as a
  `dot_general` over the channels (after the stride's slicing). Same parameters, same maths;
  on XLA-CPU the weight gradient of a 1×1 convolution otherwise transposes the whole
  activation to batch-minor first, the costliest op of a ResNet-50 training step
  (benchmarks/README.md). Other backends keep the convolution: cuDNN runs 1×1 convolutions as
  matmuls already, and XLA-GPU's Triton GEMM tiling fails on the dot's gradient
  (benchmarks/README.md)."""
  channels_last = lhs.ndim == 4 and dimension_numbers == jax.lax.conv_dimension_numbers(
      lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))  # nn.Conv's; lax's own default is NCHW
  pointwise = (jax.default_backend() == "cpu" and channels_last and rhs.shape[:2] == (1, 1)
               and feature_group_count == 1
               and (padding == "VALID" or all(tuple(p) == (0, 0) for p in padding))
               and all(d == 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
               and not kwargs)
  if not pointwise:
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision, **kwargs)
  sh, sw = window_strides
  return _channel_dot(lhs[:, ::sh, ::sw, :], rhs[0, 0], precision)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _channel_dot(x, kernel, precision):
  """[N,H,W,Cin]·[Cin,Cout] -> [N,H,W,Cout]."""
  return jax.lax.dot_general(x, kernel, (((3,), (0,)), ((), ())), precision=precision)


def _channel_dot_jvp(precision, primals, tangents):
  """The kernel's term is a 2-D dot over [N·H·W, Cin], so its transpose, the weight
  gradient, is one matmul reading both operands in place. Its 4-D form made XLA-CPU copy the
  output gradient to [Cout, N,H,W] first (benchmarks/README.md). The forward keeps the 4-D
  dot: spatial positions stay apart for the receptive-field analysis."""
  (x, kernel), (dx, dkernel) = primals, tangents
  y = _channel_dot(x, kernel, precision)
  dy = None
  if not isinstance(dx, jax.custom_derivatives.SymbolicZero):
    dy = _channel_dot(dx, kernel, precision)
  if not isinstance(dkernel, jax.custom_derivatives.SymbolicZero):
    term = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), dkernel, (((1,), (0,)), ((), ())),
                               precision=precision).reshape(y.shape)
    dy = term if dy is None else dy + term
  return y, jnp.zeros_like(y) if dy is None else dy


_channel_dot.defjvp(_channel_dot_jvp, symbolic_zeros=True)

"""Deterministic per-example transforms in TF: decode, eval resizing, normalisation.

Eval resizing follows the source framework (`WeightsMeta`): torchvision resizes the
shorter side to `resize_size` (bilinear, antialiased) and centre-crops `image_size`;
Keras resizes straight to `image_size`. Normalisation uses the constants of
`cnnviz_jax.weights.preprocessing` ('torch' | 'caffe' | 'tf' | 'lite'), a dataset's own mean/std
('standardize'), or just /255 ('unit').
"""
from collections.abc import Sequence

import tensorflow as tf

from cnnviz_jax.weights import preprocessing

NORMALIZATIONS = preprocessing.MODES + ("standardize", "unit")
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


def decode(encoded: tf.Tensor, channels: int = 3) -> tf.Tensor:
  """JPEG/PNG/BMP/GIF bytes -> uint8 (h, w, channels); gray is expanded to RGB."""
  image = tf.io.decode_image(encoded, channels=channels, expand_animations=False,
                             dtype=tf.uint8)
  image.set_shape([None, None, channels])
  return image


def _resize(image: tf.Tensor, size: tuple, method: str) -> tf.Tensor:
  if method not in RESIZE_METHODS:
    raise ValueError(f"unknown resize method {method!r}; valid: {', '.join(RESIZE_METHODS)}")
  # antialias as PIL / torchvision do when shrinking (no effect for nearest)
  return tf.image.resize(tf.cast(image, tf.float32), size, method=method,
                         antialias=method != "nearest")


def eval_resize(image: tf.Tensor, image_size: int, resize_size: int | None = None,
                method: str = "bilinear", mask: tf.Tensor | None = None):
  """(h, w, C) -> float32 (image_size, image_size, C), and the (h, w) mask alike (nearest).

  resize_size=None: direct resize (Keras). Otherwise shorter side -> resize_size, then a
  centre crop (torchvision `Resize(resize_size)` + `CenterCrop(image_size)`).
  """
  if resize_size is None:
    size = (image_size, image_size)
    out = _resize(image, size, method)
    if mask is not None:
      mask = _resize(mask[..., None], size, "nearest")[..., 0]
    return out, mask
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  short, long_ = tf.minimum(h, w), tf.maximum(h, w)
  # torchvision: the long side is int(resize_size * long / short), truncated
  new_long = tf.cast(tf.cast(resize_size, tf.float64) * tf.cast(long_, tf.float64)
                     / tf.cast(short, tf.float64), tf.int32)
  new_h = tf.where(h <= w, resize_size, new_long)
  new_w = tf.where(h <= w, new_long, resize_size)
  out = _resize(image, tf.stack([new_h, new_w]), method)
  # torchvision CenterCrop: top = int(round((h - size) / 2))
  top = tf.cast(tf.round(tf.cast(new_h - image_size, tf.float32) / 2), tf.int32)
  left = tf.cast(tf.round(tf.cast(new_w - image_size, tf.float32) / 2), tf.int32)
  out = out[top:top + image_size, left:left + image_size]
  out.set_shape([image_size, image_size, image.shape[-1]])
  if mask is not None:
    mask = _resize(mask[..., None], tf.stack([new_h, new_w]), "nearest")[..., 0]
    mask = mask[top:top + image_size, left:left + image_size]
    mask.set_shape([image_size, image_size])
  return out, mask


def normalize(image: tf.Tensor, mode: str, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> tf.Tensor:
  """float RGB in [0, 255] (…, H, W, 3) -> float32 model input in the convention of `mode`."""
  x = tf.cast(image, tf.float32)
  if mode == "torch":
    return (x / 255.0 - preprocessing.TORCH_MEAN) / preprocessing.TORCH_STD
  if mode == "caffe":
    return x[..., ::-1] - tf.constant(preprocessing.CAFFE_MEAN_BGR, tf.float32)
  if mode == "tf":
    return x / 127.5 - 1.0
  if mode == "lite":
    return (x - preprocessing.LITE_MEAN) / preprocessing.LITE_STD
  if mode == "unit":
    return x / 255.0
  if mode == "standardize":
    if mean is None or std is None:
      raise ValueError("normalization 'standardize' needs the dataset's mean and std "
                       "(per channel, on the [0, 1] scale; see data.stats.mean_std)")
    return (x / 255.0 - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
  raise ValueError(f"unknown normalization {mode!r}; valid: {', '.join(NORMALIZATIONS)}")

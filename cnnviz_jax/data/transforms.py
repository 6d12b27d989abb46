"""Deterministic per-example transforms in TF: decode and eval resizing.

Eval resizing follows the source framework (`WeightsMeta`): torchvision resizes the
shorter side to `resize_size` (bilinear, antialiased) and center-crops `image_size`;
Keras resizes straight to `image_size`. Normalization is `weights.preprocessing`'s.
"""
import tensorflow as tf

from cnnviz_jax.errors import check_one_of

RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


def decode(encoded: tf.Tensor, channels: int = 3) -> tf.Tensor:
  """JPEG/PNG/BMP/GIF bytes -> uint8 (h, w, channels); gray is expanded to RGB."""
  image = tf.io.decode_image(encoded, channels=channels, expand_animations=False,
                             dtype=tf.uint8)
  image.set_shape([None, None, channels])
  return image


def _resize(image: tf.Tensor, size: tuple, method: str) -> tf.Tensor:
  check_one_of(method, RESIZE_METHODS, "resize method")
  if isinstance(size, tuple) and tuple(image.shape[:2]) == size:  # static, as decoded in RAM
    return tf.cast(image, tf.float32)  # each method is the identity at scale 1, bit for bit
  # antialias as PIL / torchvision do when shrinking (no effect for nearest)
  return tf.image.resize(tf.cast(image, tf.float32), size, method=method,
                         antialias=method != "nearest")


def eval_resize(image: tf.Tensor, image_size: int, resize_size: int | None = None,
                method: str = "bilinear", mask: tf.Tensor | None = None):
  """(h, w, C) -> float32 (image_size, image_size, C), and the (h, w) mask alike (nearest;
  (h, w, k): k masks stacked as channels).

  resize_size=None: direct resize (Keras). Otherwise shorter side -> resize_size, then a
  center crop (torchvision `Resize(resize_size)` + `CenterCrop(image_size)`).
  """
  if resize_size is None:
    size = (image_size, image_size)
    out = _resize(image, size, method)
    if mask is not None:
      mask = _unchannel(_resize(_channels(mask), size, "nearest"), mask)
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
    resized = _resize(_channels(mask), tf.stack([new_h, new_w]), "nearest")
    resized = resized[top:top + image_size, left:left + image_size]
    resized.set_shape([image_size, image_size, resized.shape[-1]])
    mask = _unchannel(resized, mask)
  return out, mask


def _channels(mask: tf.Tensor) -> tf.Tensor:
  """A (h, w) mask or (h, w, k) stacked masks -> (h, w, k)."""
  return mask if mask.shape.rank == 3 else mask[..., None]


def _unchannel(resized: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
  """(out, out, k) back to the rank of the mask given (`like`)."""
  return resized if like.shape.rank == 3 else resized[..., 0]

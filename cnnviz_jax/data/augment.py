"""Training augmentations in TF, per example, stateless (a (2,) int key -> same output).

Every geometric augmentation is composed into ONE 3x3 matrix mapping output pixel
coordinates to input coordinates (x = column, y = row, pixel centers at integers), applied
by a single warp from the decoded image straight to the output size: the resize, crop,
rotation, shift, shear, zoom and flips cost one resampling, not five. Masks go through
the same matrix with nearest interpolation.

- 'keras': Keras' ImageDataGenerator: rotation ±deg, width/height shift (fractions),
  shear (degrees, as Keras: a shear of 0.2 is 0.2°), zoom [1-z, 1+z] per axis, horizontal
  flip after the warp; fill 'nearest'. The image is first resized to the output size
  (folded into the matrix), as flow_from_directory(target_size) does.
- 'torchvision': RandomResizedCrop(scale, ratio) -> horizontal / vertical flip ->
  RandomRotation(±deg), as torchvision composes them, in that order.
Color jitter (brightness, contrast, saturation, hue; torchvision's factor ranges, fixed
order) is optional for both.
"""
import math
from collections.abc import Mapping

import tensorflow as tf

from cnnviz_jax.errors import check_one_of

KINDS = ("keras", "torchvision")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def _m(rows) -> tf.Tensor:
  return tf.stack([tf.stack([tf.cast(v, tf.float32) for v in row]) for row in rows])


def translate(tx, ty) -> tf.Tensor:
  return _m([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale(sx, sy) -> tf.Tensor:
  return _m([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate(degrees) -> tf.Tensor:
  """Output -> input for a counter-clockwise (as displayed, y down) rotation of the content."""
  t = tf.cast(degrees, tf.float32) * (math.pi / 180)
  c, s = tf.cos(t), tf.sin(t)
  return _m([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def about_center(matrix: tf.Tensor, size) -> tf.Tensor:
  """Conjugates `matrix` so it acts about the center of a size x size image."""
  o = (tf.cast(size, tf.float32) - 1) / 2
  return translate(o, o) @ matrix @ translate(-o, -o)


def flip(horizontal, vertical, size) -> tf.Tensor:
  """x -> size-1-x when horizontal (a bool tensor), y alike when vertical."""
  fh = tf.where(horizontal, -1.0, 1.0)
  fv = tf.where(vertical, -1.0, 1.0)
  last = tf.cast(size, tf.float32) - 1
  return _m([[fh, 0, tf.where(horizontal, last, 0.0)], [0, fv, tf.where(vertical, last, 0.0)],
             [0, 0, 1]])


def resize_matrix(in_h, in_w, out_h, out_w) -> tf.Tensor:
  """Output -> input for a half-pixel-centered resize of (in_h, in_w) to (out_h, out_w)."""
  sx = tf.cast(in_w, tf.float32) / tf.cast(out_w, tf.float32)
  sy = tf.cast(in_h, tf.float32) / tf.cast(out_h, tf.float32)
  return translate(-0.5, -0.5) @ scale(sx, sy) @ translate(0.5, 0.5)


def keras_matrix(theta, tx, ty, shear, zx, zy, size) -> tf.Tensor:
  """Keras `apply_affine_transform` on a size x size image, in (x, y) output -> input.

  theta and shear in degrees; tx / ty shift columns / rows, in pixels.
  """
  sh = tf.cast(shear, tf.float32) * (math.pi / 180)
  shear_m = _m([[1, -tf.sin(sh), 0], [0, tf.cos(sh), 0], [0, 0, 1]])
  return about_center(rotate(theta) @ translate(tx, ty) @ shear_m @ scale(zx, zy), size)


def warp(image: tf.Tensor, matrix: tf.Tensor, out_size, interpolation: str = "bilinear",
         fill_mode: str = "nearest") -> tf.Tensor:
  """(h, w, C) -> float32 (out, out, C): out[y, x] = image at matrix @ (x, y, 1)."""
  check_one_of(fill_mode, FILL_MODES, "fill_mode")
  m = matrix / matrix[2, 2]
  transform = tf.stack([m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2], 0.0, 0.0])
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=tf.cast(image, tf.float32)[None], transforms=transform[None],
      output_shape=tf.constant([out_size, out_size], tf.int32), fill_value=0.0,
      interpolation=interpolation.upper(), fill_mode=fill_mode.upper())
  return out[0]


def _uniform(key, lo, hi, shape=()):
  return tf.random.stateless_uniform(shape, key, lo, hi, tf.float32)


def keras_random_matrix(key, h, w, size: int, cfg: Mapping) -> tf.Tensor:
  """A random ImageDataGenerator transform of the (h, w) image resized to size x size."""
  k = tf.random.experimental.stateless_split(key, 6)
  rot, shear, zoom = cfg.get("rotation", 0.0), cfg.get("shear", 0.0), cfg.get("zoom", 0.0)
  theta = _uniform(k[0], -rot, rot)
  tx = _uniform(k[1], -1.0, 1.0) * cfg.get("width_shift", 0.0) * size
  ty = _uniform(k[2], -1.0, 1.0) * cfg.get("height_shift", 0.0) * size
  sh = _uniform(k[3], -shear, shear)
  z = _uniform(k[4], 1.0 - zoom, 1.0 + zoom, (2,))
  u = _uniform(k[5], 0.0, 1.0, (2,))
  hflip = tf.logical_and(u[0] < 0.5, bool(cfg.get("horizontal_flip", False)))
  vflip = tf.logical_and(u[1] < 0.5, bool(cfg.get("vertical_flip", False)))
  affine = keras_matrix(theta, tx, ty, sh, z[0], z[1], size)
  return resize_matrix(h, w, size, size) @ affine @ flip(hflip, vflip, size)


def random_resized_crop_box(key, h, w, scale_range=(0.08, 1.0),
                            ratio_range=(3 / 4, 4 / 3), attempts: int = 10):
  """torchvision RandomResizedCrop.get_params: (top, left, height, width), ints."""
  k = tf.random.experimental.stateless_split(key, 4)
  hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
  area = hf * wf * _uniform(k[0], scale_range[0], scale_range[1], (attempts,))
  log_r = _uniform(k[1], math.log(ratio_range[0]), math.log(ratio_range[1]), (attempts,))
  aspect = tf.exp(log_r)
  cw = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
  ch = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
  ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
  # fallback (no attempt fits): the largest centered crop within the ratio range
  in_ratio = wf / hf
  fw = tf.where(in_ratio > ratio_range[1], tf.cast(tf.round(hf * ratio_range[1]), tf.int32), w)
  fh = tf.where(in_ratio < ratio_range[0], tf.cast(tf.round(wf / ratio_range[0]), tf.int32), h)
  first = tf.argmax(tf.cast(ok, tf.int32))  # the first attempt that fits
  any_ok = tf.reduce_any(ok)
  ch = tf.where(any_ok, ch[first], fh)
  cw = tf.where(any_ok, cw[first], fw)
  u = _uniform(k[2], 0.0, 1.0, (2,))
  top = tf.where(any_ok, tf.cast(u[0] * tf.cast(h - ch + 1, tf.float32), tf.int32),
                 (h - ch) // 2)
  left = tf.where(any_ok, tf.cast(u[1] * tf.cast(w - cw + 1, tf.float32), tf.int32),
                  (w - cw) // 2)
  return tf.minimum(top, h - ch), tf.minimum(left, w - cw), ch, cw


def torchvision_random_matrix(key, h, w, size: int, cfg: Mapping) -> tf.Tensor:
  """RandomResizedCrop -> RandomHorizontalFlip -> RandomVerticalFlip -> RandomRotation."""
  k = tf.random.experimental.stateless_split(key, 3)
  top, left, ch, cw = random_resized_crop_box(
      k[0], h, w, tuple(cfg.get("scale", (0.08, 1.0))), tuple(cfg.get("ratio", (3 / 4, 4 / 3))))
  crop = translate(left, top) @ resize_matrix(ch, cw, size, size)
  u = _uniform(k[1], 0.0, 1.0, (2,))
  hflip = tf.logical_and(u[0] < 0.5, bool(cfg.get("horizontal_flip", False)))
  vflip = tf.logical_and(u[1] < 0.5, bool(cfg.get("vertical_flip", False)))
  deg = cfg.get("rotation", 0.0)
  rot = about_center(rotate(_uniform(k[2], -deg, deg)), size)
  return crop @ flip(hflip, vflip, size) @ rot


def color_jitter(image: tf.Tensor, key, brightness=0.0, contrast=0.0, saturation=0.0,
                 hue=0.0) -> tf.Tensor:
  """float RGB in [0, 255] -> jittered, clipped to [0, 255]; factors as torchvision's."""
  k = tf.random.experimental.stateless_split(key, 4)
  x = image
  gray = lambda t: tf.reduce_sum(t * tf.constant([0.299, 0.587, 0.114]), -1, keepdims=True)
  if brightness:
    x = tf.clip_by_value(x * _uniform(k[0], max(0.0, 1 - brightness), 1 + brightness), 0, 255)
  if contrast:
    f = _uniform(k[1], max(0.0, 1 - contrast), 1 + contrast)
    m = tf.reduce_mean(gray(x))
    x = tf.clip_by_value((x - m) * f + m, 0, 255)
  if saturation:
    f = _uniform(k[2], max(0.0, 1 - saturation), 1 + saturation)
    g = gray(x)
    x = tf.clip_by_value((x - g) * f + g, 0, 255)
  if hue:
    x = tf.image.adjust_hue(x / 255.0, _uniform(k[3], -hue, hue)) * 255.0
  return x


def augment(image: tf.Tensor, key, size: int, cfg: Mapping, mask: tf.Tensor | None = None):
  """uint8 (h, w, 3) [+ mask (h, w), or (h, w, k) masks] -> float32 (size, size, 3) in [0, 255]
  [+ the mask(s) at (size, size), nearest]."""
  kind = cfg.get("kind")
  check_one_of(kind, KINDS, "augmentation kind", note="(or no augmentation: kind=None)")
  k = tf.random.experimental.stateless_split(key, 2)
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  random_matrix = keras_random_matrix if kind == "keras" else torchvision_random_matrix
  matrix = random_matrix(k[0], h, w, size, cfg)
  fill = cfg.get("fill_mode", "nearest")
  out = warp(image, matrix, size, "bilinear", fill)
  out = tf.clip_by_value(out, 0.0, 255.0)  # bilinear on uint8 never overshoots; be exact
  jitter = cfg.get("color_jitter")
  if jitter:
    out = color_jitter(out, k[1], **dict(jitter))
  if mask is not None:
    stacked = warp(mask if mask.shape.rank == 3 else mask[..., None], matrix, size,
                   "nearest", fill)
    mask = stacked if mask.shape.rank == 3 else stacked[..., 0]
  return out, mask

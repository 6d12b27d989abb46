"""The one per-example transform: encoded bytes or pixels -> the model's input (tf).

The pipeline maps it over every example; the report's samples call it on single images.
"""
import numpy as np
import tensorflow as tf

from cnnviz_jax.data import augment, transforms
from cnnviz_jax.weights import preprocessing

try:  # tf.data only: TF must never take an accelerator from JAX (every TF path imports this)
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # already initialized by the caller; tensorflow-cpu has none anyway
  pass


def decode_all(encoded: np.ndarray, channels: int) -> np.ndarray:
  """Encoded images of one size -> uint8 (n, h, w[, channels > 1]), decoded in parallel."""
  ds = tf.data.Dataset.from_tensor_slices(encoded).map(
      lambda e: pixels(e, channels), num_parallel_calls=tf.data.AUTOTUNE)
  return np.concatenate(list(ds.batch(1024).as_numpy_iterator()))


def pixels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """Encoded bytes are decoded; decoded uint8 pixels (the pipeline's RAM store) pass."""
  if image.dtype == tf.uint8:
    return image
  decoded = transforms.decode(image, channels)
  return decoded if channels > 1 else decoded[..., 0]


# Branches on the config and dtypes only, never on a tensor's value: AutoGraph has nothing to
# convert, yet converting it (augment and all) cost ~0.7 CPU-s in each process's first pipeline.
@tf.autograph.experimental.do_not_convert
def model_input(cfg: dict, image: tf.Tensor, object_mask: tf.Tensor | None = None,
                augment_key: tf.Tensor | None = None,
                ignore_mask: tf.Tensor | None = None) -> dict:
  """One image (and its masks: source.MASK_KEYS), encoded or as uint8 pixels -> {'image':
  model input[, 'object_mask'][, 'ignore_mask']}: the configured augmentation when given a
  key (training), else the eval resizing; then the normalization. The masks travel stacked
  as channels, so they cost one resampling and follow the image exactly. The one
  per-example transform of the pipeline and the report."""
  size = cfg["image_size"]
  image = pixels(image, 3)
  given = {k: m for k, m in (("object_mask", object_mask), ("ignore_mask", ignore_mask))
           if m is not None}
  masks = tf.stack([pixels(m, 1) for m in given.values()], -1) if given else None
  aug = dict(cfg["augment"] or {})
  if augment_key is not None and aug.get("kind"):
    image, masks = augment.augment(image, augment_key, size, aug, masks)
  else:
    image, masks = transforms.eval_resize(image, size, cfg["resize_size"],
                                          cfg["resize_method"], masks)
  out = {"image": preprocessing.normalize(tf.cast(image, tf.float32), cfg["normalization"],
                                          cfg["mean"], cfg["std"])}
  for i, key in enumerate(given):
    out[key] = tf.cast(masks[..., i], tf.float32)
  return out

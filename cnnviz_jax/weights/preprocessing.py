"""Input normalization and its inverse: the one home of every mode and its constants.

- 'torch': /255, then ImageNet mean/std (torchvision's ToTensor + Normalize).
- 'caffe': RGB→BGR, subtract the BGR ImageNet mean, no scaling
  (keras.applications ResNet50 / VGG16 / VGG19 `preprocess_input`).
- 'tf': scale to [-1, 1] (keras.applications Inception / Xception).
- 'lite': (x − 127) / 128 (Google's EfficientNet-Lite and other edge models: the
  "inception-style" mean and std of efficientnet_lite_builder, for quantization).
- 'standardize': /255, then a dataset's own per-channel mean/std; 'unit': /255.
Pure array arithmetic, so the same functions run on numpy, jax and TensorFlow tensors:
in tf.data, on device, in the report and for images made by optimization.
"""
from collections.abc import Sequence

import numpy as np

from cnnviz_jax.errors import check_one_of

MODES = ("torch", "caffe", "tf", "lite")  # what converted weights were trained with
NORMALIZATIONS = MODES + ("standardize", "unit")  # what a data config may ask for
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
LITE_MEAN, LITE_STD = 127.0, 128.0


def _mean_std(mode: str, mean, std) -> tuple[np.ndarray, np.ndarray]:
  if mode == "torch":
    mean, std = TORCH_MEAN, TORCH_STD
  elif mean is None or std is None:
    raise ValueError("normalization 'standardize' needs the dataset's mean and std "
                     "(per channel, on the [0, 1] scale; see data.stats.mean_std)")
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _check(mode: str) -> None:
  check_one_of(mode, NORMALIZATIONS, "normalization")


def normalize(x, mode: str, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None):
  """Float RGB in [0, 255] (…, H, W, 3) -> model input in the convention of `mode`."""
  _check(mode)
  if mode == "caffe":
    return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
  if mode == "tf":
    return x / 127.5 - 1.0
  if mode == "lite":
    return (x - LITE_MEAN) / LITE_STD
  if mode == "unit":
    return x / 255.0
  mean, std = _mean_std(mode, mean, std)
  return (x / 255.0 - mean) / std


def denormalize(x, mode: str, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None):
  """The inverse of `normalize`: model input -> float RGB in [0, 255]."""
  _check(mode)
  if mode == "caffe":
    return (x + np.asarray(CAFFE_MEAN_BGR, np.float32))[..., ::-1]
  if mode == "tf":
    return (x + 1.0) * 127.5
  if mode == "lite":
    return x * LITE_STD + LITE_MEAN
  if mode == "unit":
    return x * 255.0
  mean, std = _mean_std(mode, mean, std)
  return (x * std + mean) * 255.0


def preprocess(images, mode: str, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None):
  """uint8 (…, H, W, 3) RGB -> float32 model input in the convention of `mode`."""
  return normalize(images.astype(np.float32), mode, mean, std)

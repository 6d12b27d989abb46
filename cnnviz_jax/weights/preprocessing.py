"""The source frameworks' own input preprocessing, for uint8 RGB NHWC images.

- 'torch': /255, then ImageNet mean/std (torchvision's ToTensor + Normalize).
- 'caffe': RGB→BGR, subtract the BGR ImageNet mean, no scaling
  (keras.applications ResNet50 / VGG16 / VGG19 `preprocess_input`).
- 'tf': scale to [-1, 1] (keras.applications Inception / Xception).
- 'lite': (x − 127) / 128 (Google's EfficientNet-Lite and other edge models: the
  "inception-style" mean and std of efficientnet_lite_builder, for quantisation).
Works on numpy and jax arrays alike (pure array arithmetic), so it can run in
tf.data's numpy stage or on device after the uint8 batch is transferred.
"""
import numpy as np

MODES = ("torch", "caffe", "tf", "lite")
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
LITE_MEAN, LITE_STD = 127.0, 128.0


def preprocess(images, mode: str):
  """uint8 (…, H, W, 3) RGB -> float32 in the convention of `mode`."""
  if mode not in MODES:
    raise ValueError(f"unknown preprocessing mode {mode!r}; valid: {', '.join(MODES)}")
  x = images.astype(np.float32)
  if mode == "torch":
    return (x / 255.0 - np.asarray(TORCH_MEAN, np.float32)) / np.asarray(TORCH_STD, np.float32)
  if mode == "caffe":
    return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
  if mode == "lite":
    return (x - LITE_MEAN) / LITE_STD
  return x / 127.5 - 1.0

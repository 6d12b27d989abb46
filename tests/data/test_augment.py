"""Augmentations and eval transforms against their definitions and the reference libraries.

(tests/data/conftest.py imports torchvision before TensorFlow: see the note there.)"""
import numpy as np
import pytest
import tensorflow as tf

from cnnviz_jax.data import augment, config, transforms
from cnnviz_jax.weights import preprocessing

KEY = tf.constant([3, 4], tf.int64)


def _smooth_image(h, w, seed=0):
  """A smooth random RGB uint8 image (resampling differences stay small on it)."""
  rng = np.random.default_rng(seed)
  grid = rng.uniform(0, 255, (5, 5, 3)).astype(np.float32)
  return tf.cast(tf.image.resize(grid[None], (h, w), "bicubic")[0], tf.uint8).numpy().clip(0, 255)


def test_warp_moves_a_dot_where_the_matrix_says():
  image = np.zeros((21, 21, 1), np.float32)
  image[4, 15] = 1.0  # input (x=15, y=4)
  m = (augment.translate(2.0, -1.0) @ augment.about_center(augment.rotate(90.0), 21)
       @ augment.scale(1.0, 1.0))
  out = augment.warp(image, m, 21, "nearest", "constant").numpy()[..., 0]
  x, y, _ = np.linalg.solve(m.numpy(), [15.0, 4.0, 1.0])  # output point mapping onto the dot
  assert out.sum() == 1.0 and out[int(round(y)), int(round(x))] == 1.0


def test_resize_matrix_and_output_size():
  image = np.zeros((10, 20, 1), np.float32)
  image[:, 10:] = 1.0  # right half
  m = augment.resize_matrix(10, 20, 5, 5)
  out = augment.warp(image, m, 5, "nearest").numpy()[..., 0]
  assert out.shape == (5, 5) and out[:, :2].sum() == 0 and out[:, 3:].min() == 1.0


@pytest.mark.parametrize("params", [
    dict(theta=30, tx=3, ty=-2, shear=10, zx=0.9, zy=1.15), dict(theta=-40), dict(tx=4.5),
    dict(shear=20), dict(zx=1.2, zy=0.8)])
def test_keras_transform_equals_keras_apply_affine_transform(params):
  legacy = pytest.importorskip("keras.src.legacy.preprocessing.image")
  img = np.random.default_rng(0).uniform(0, 255, (24, 24, 3)).astype(np.float32)
  ref = legacy.apply_affine_transform(img, row_axis=0, col_axis=1, channel_axis=2,
                                      fill_mode="nearest", order=1, **params)
  p = dict(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1) | params
  m = augment.keras_matrix(p["theta"], p["tx"], p["ty"], p["shear"], p["zx"], p["zy"], 24)
  np.testing.assert_allclose(augment.warp(img, m, 24).numpy(), ref, atol=1e-2)


def test_crop_and_rotation_equal_torchvision():
  torch = pytest.importorskip("torch")
  tvf = pytest.importorskip("torchvision.transforms.v2.functional")
  img = _smooth_image(40, 50)
  t = torch.from_numpy(img).permute(2, 0, 1).float()
  # RandomResizedCrop's resize of a box (top 5, left 7, 20 x 30) to 16 x 16, no antialias
  ref = tvf.resized_crop(t, 5, 7, 20, 30, [16, 16], antialias=False).permute(1, 2, 0).numpy()
  m = augment.translate(7, 5) @ augment.resize_matrix(20, 30, 16, 16)
  ours = augment.warp(img, m, 16).numpy()
  assert np.abs(ours - ref)[1:-1, 1:-1].max() < 0.05  # borders: torch clamps inside the box
  # RandomRotation: counter-clockwise, nearest, zero fill, about the center
  square = img[:32, :32]
  ref = tvf.rotate(torch.from_numpy(square).permute(2, 0, 1), 35.0).permute(1, 2, 0).numpy()
  ours = augment.warp(square, augment.about_center(augment.rotate(35.0), 32), 32, "nearest",
                      "constant").numpy()
  assert np.mean(np.abs(ours - ref) < 1) > 0.97  # rounding ties on a few pixels only


def test_random_resized_crop_box_respects_bounds_scale_and_ratio():
  for i in range(50):
    key = tf.constant([i, 7], tf.int64)
    top, left, h, w = (int(v) for v in augment.random_resized_crop_box(key, 60, 80))
    assert 0 <= top <= 60 - h and 0 <= left <= 80 - w and h > 0 and w > 0
    assert 0.08 * 4800 * 0.9 <= h * w <= 4800 and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
  # no attempt can fit (whole image, square crops of a 10 x 40 image): centered fallback
  top, left, h, w = (int(v) for v in augment.random_resized_crop_box(
      KEY, 10, 40, (1.0, 1.0), (1.0, 1.0)))
  assert (top, h, w, left) == (0, 10, 10, 15)


@pytest.mark.parametrize("aug", [config.KERAS_SEED_001, config.TORCHVISION_SEED_002])
def test_geometric_augmentations_keep_image_and_mask_aligned(aug):
  yy, xx = np.mgrid[:48, :64]
  mask = ((xx - 40)**2 / 150 + (yy - 20)**2 / 60 < 1).astype(np.uint8)  # an ellipse
  image = np.repeat(mask[..., None] * 255, 3, axis=-1).astype(np.uint8)
  agree = []
  for i in range(20):
    out, out_mask = augment.augment(tf.constant(image), tf.constant([i, 1], tf.int64), 32, aug,
                                    tf.constant(mask))
    agree.append(np.mean((out.numpy()[..., 0] > 127) == (out_mask.numpy() > 0.5)))
  assert min(agree) > 0.97 and np.mean(agree) > 0.99


def test_augment_is_deterministic_per_key_and_varies_across_keys():
  img = tf.constant(_smooth_image(30, 40))
  cfg = dict(config.KERAS_SEED_001, color_jitter=dict(brightness=0.3, contrast=0.3,
                                                      saturation=0.3, hue=0.05))
  a = augment.augment(img, KEY, 24, cfg)[0].numpy()
  b = augment.augment(img, KEY, 24, cfg)[0].numpy()
  c = augment.augment(img, KEY + 1, 24, cfg)[0].numpy()
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).mean() > 1.0 and a.min() >= 0 and a.max() <= 255


def test_color_jitter_with_zero_strength_is_identity():
  img = tf.constant(_smooth_image(8, 8), tf.float32)
  np.testing.assert_array_equal(augment.color_jitter(img, KEY).numpy(), img.numpy())


def test_eval_resize_and_normalize_equal_torchvision():
  pytest.importorskip("torchvision")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from torchvision import transforms as T  # pylint: disable=import-outside-toplevel
  img = _smooth_image(90, 120, seed=1)
  ref = T.Compose([T.Resize(64), T.CenterCrop(56), T.ToTensor(),
                   T.Normalize(preprocessing.TORCH_MEAN, preprocessing.TORCH_STD)])(
                       Image.fromarray(img)).permute(1, 2, 0).numpy()
  ours, _ = transforms.eval_resize(tf.constant(img), 56, 64)
  ours = preprocessing.normalize(ours, "torch").numpy()
  diff = np.abs(ours - ref) * 255 * np.asarray(preprocessing.TORCH_STD)  # in uint8 levels
  assert diff.max() < 1.5 and diff.mean() < 0.5


def test_eval_resize_and_normalize_equal_keras(tmp_path):
  keras = pytest.importorskip("keras")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  img = _smooth_image(90, 120, seed=2)
  Image.fromarray(img).save(tmp_path / "x.png")
  loaded = keras.utils.img_to_array(keras.utils.load_img(tmp_path / "x.png", target_size=(48, 48),
                                                         interpolation="bilinear"))
  ref = keras.applications.resnet50.preprocess_input(loaded[None].copy())[0]  # in place
  ours, _ = transforms.eval_resize(tf.constant(img), 48)
  ours = preprocessing.normalize(ours, "caffe").numpy()
  assert np.abs(ours - ref).max() < 1.5 and np.abs(ours - ref).mean() < 0.5


def test_eval_resize_center_crop_keeps_the_mask_aligned():
  mask = np.zeros((30, 60), np.uint8)
  mask[10:20, 25:35] = 1  # a centered square
  image = tf.constant(np.repeat(mask[..., None] * 255, 3, axis=-1))
  out, out_mask = transforms.eval_resize(image, 16, 20, mask=tf.constant(mask))
  assert out.shape == (16, 16, 3) and out_mask.shape == (16, 16)
  assert np.mean((out.numpy()[..., 0] > 127) == (out_mask.numpy() > 0)) > 0.97
  assert out_mask.numpy()[8, 8] == 1 and out_mask.numpy()[0, 0] == 0


@pytest.mark.parametrize("mode", preprocessing.NORMALIZATIONS)
def test_normalize_is_the_same_on_tf_numpy_and_jax_and_denormalize_inverts_it(mode):
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  img = _smooth_image(6, 7).astype(np.float32)
  stats = dict(mean=(0.3, 0.4, 0.5), std=(0.2, 0.25, 0.3)) if mode == "standardize" else {}
  ours = preprocessing.normalize(img, mode, **stats)
  np.testing.assert_allclose(preprocessing.normalize(tf.constant(img), mode, **stats).numpy(),
                             ours, rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(preprocessing.normalize(jnp.asarray(img), mode, **stats), ours,
                             rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(preprocessing.denormalize(ours, mode, **stats), img, atol=1e-3)


def test_unknown_choices_are_clear_errors():
  with pytest.raises(ValueError, match="unknown normalization 'zca'; valid: torch, caffe, tf"):
    preprocessing.normalize(tf.zeros((2, 2, 3)), "zca")
  with pytest.raises(ValueError, match="unknown fill_mode 'mirror'"):
    augment.warp(np.zeros((4, 4, 1), np.float32), tf.eye(3), 4, fill_mode="mirror")
  with pytest.raises(ValueError, match="standardize' needs the dataset's mean and std"):
    preprocessing.normalize(tf.zeros((2, 2, 3)), "standardize")

"""Decoy shapes: a class-colored corner patch in train/validation, a random one in test."""
import numpy as np
import pytest

from cnnviz_jax.data import shapes, shapes_decoy, shapes_render

SIDE = 4


def _patch_color(image, side=SIDE):
  """(corner index, RGB) of the corner square that holds a palette color, by looking."""
  for k, (rows, cols) in enumerate(shapes_decoy.corner_boxes(image.shape[0], side)):
    pixels = image[rows, cols].reshape(-1, 3)
    for color in shapes_decoy.PALETTE:
      if (pixels == color).all(axis=1).sum() >= side * side // 2:
        return k, tuple(color)
  return None, None


@pytest.fixture(scope="module")
def twins():
  images, masks, labels = shapes_render.render(3, 600, image_size=32, num_classes=5)
  seed = np.random.SeedSequence([3, 0, 1])
  return (images, masks, labels, shapes_decoy.add_decoys(seed, images, masks, labels, SIDE, True),
          shapes_decoy.add_decoys(seed, images, masks, labels, SIDE, False))


def test_the_patch_color_is_the_class_color_and_only_the_patch_changes(twins):
  images, masks, labels, decoy, _ = twins
  found = [_patch_color(im) for im in decoy]
  colors = [shapes_decoy.PALETTE.tolist().index(list(c)) for _, c in found]
  assert colors == labels.tolist()
  changed = (decoy != images).any(-1)  # (N, S, S)
  near_object = shapes_decoy._dilate(masks.astype(bool))  # pylint: disable=protected-access
  assert not (changed & near_object).any()  # the object and its outline are untouched
  assert changed.sum(axis=(1, 2)).max() <= SIDE * SIDE
  # the corner says nothing about the class: every class uses every corner
  corners = np.array([k for k, _ in found])
  for c in range(5):
    assert set(corners[labels == c]) == {0, 1, 2, 3}


def test_in_test_the_color_is_a_random_class_color(twins):
  _, _, labels, _, random = twins
  colors = np.array([shapes_decoy.PALETTE.tolist().index(list(_patch_color(im)[1]))
                      for im in random])
  assert set(colors) == set(range(5))
  agreement = (colors == labels).mean()
  assert abs(agreement - 0.2) < 0.06, agreement  # chance for 5 classes, 600 images


def test_builder_decoy_in_train_and_validation_random_in_test_masks_unchanged(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  cfg = dict(num_classes=4, image_size=24, num_train=80, num_validation=80, num_test=80, seed=2)
  plain = shapes.prepare(str(tmp_path), **cfg)
  decoy = shapes.prepare(str(tmp_path), decoy=3, **cfg)
  assert plain.builder_config.name == "c4_s24_n80-80-80_d50_seed2"  # decoy-free names as before
  assert decoy.builder_config.name == "c4_s24_n80-80-80_d50_decoy3_seed2"
  for split, agreement in (("train", (1.0, 1.0)), ("validation", (1.0, 1.0)),
                           ("test", (0.1, 0.45))):
    a = list(tfds.as_numpy(plain.as_dataset(split=split, shuffle_files=False)))
    b = list(tfds.as_numpy(decoy.as_dataset(split=split, shuffle_files=False)))
    hits = []
    for ex_a, ex_b in zip(a, b):
      np.testing.assert_array_equal(ex_a["object_mask"], ex_b["object_mask"])
      assert ex_a["label"] == ex_b["label"]
      changed = (ex_a["image"] != ex_b["image"]).any(-1)
      assert 0 < changed.sum() <= 9 and not (changed & (ex_a["object_mask"][..., 0] > 0)).any()
      color = _patch_color(ex_b["image"], 3)[1]
      hits.append(color == tuple(shapes_decoy.PALETTE[ex_b["label"]]))
    assert agreement[0] <= np.mean(hits) <= agreement[1], (split, np.mean(hits))


def test_bad_decoy_is_a_clear_error():
  images, masks, labels = shapes_render.render(0, 8, image_size=16, num_classes=3)
  with pytest.raises(ValueError, match="decoy side must be in 1..4 pixels"):
    shapes_decoy.add_decoys(np.random.SeedSequence(0), images, masks, labels, 5, True)

"""The synthetic shapes dataset: deterministic, balanced, masks on the objects, no leaks."""
import numpy as np
import pytest

from cnnviz_jax.data import shapes, shapes_render


@pytest.fixture(scope="module")
def rendered():
  return shapes_render.render(7, 1500, image_size=32, num_classes=5)


def test_same_seed_same_bytes_other_seed_differs():
  a = shapes_render.render(3, 40, image_size=24, num_classes=8)
  b = shapes_render.render(3, 40, image_size=24, num_classes=8)
  c = shapes_render.render(4, 40, image_size=24, num_classes=8)
  for x, y in zip(a, b):
    assert x.tobytes() == y.tobytes()
  assert a[0].tobytes() != c[0].tobytes()


def test_classes_are_balanced(rendered):
  _, _, labels = rendered
  assert np.bincount(labels).tolist() == [300] * 5


def test_masks_cover_the_object_and_only_it(rendered):
  images, masks, _ = rendered
  area = masks.mean(axis=(1, 2))
  assert area.min() > 0.05 and area.max() < 0.5  # objects >= ~30% of the side, inside
  # the object's interior is one flat color (plus grain); the pixels just outside are not
  inside = [im[_erode(m)].astype(float) for im, m in zip(images[:50], masks[:50])]
  assert np.median([x.std(axis=0).mean() for x in inside]) < 8.0
  for im, m in zip(images[:50], masks[:50]):
    obj = im[m.astype(bool)].astype(float).mean(axis=0)
    ring = _dilate(m) & ~_dilate(_erode(m)).astype(bool) & ~m.astype(bool)
    assert np.linalg.norm(im[ring].astype(float).mean(axis=0) - obj) > 40.0


def _dilate(m):
  m = m.astype(bool)
  out = m.copy()
  out[1:] |= m[:-1]; out[:-1] |= m[1:]; out[:, 1:] |= m[:, :-1]; out[:, :-1] |= m[:, 1:]
  return out


def _erode(m):
  return ~_dilate(~m.astype(bool))


def _features(images, masks, kind):
  m = masks.astype(np.float32)[..., None]
  area = m.sum(axis=(1, 2))
  ys, xs = np.mgrid[:masks.shape[1], :masks.shape[2]]
  cy = (masks * ys).sum(axis=(1, 2)) / area[:, 0]
  cx = (masks * xs).sum(axis=(1, 2)) / area[:, 0]
  if kind == "color_position_size":
    return np.column_stack([images.mean(axis=(1, 2)), (images * m).sum(axis=(1, 2)) / area,
                            images.std(axis=(1, 2)), cx, cy, area])
  # positive control: how much of its bounding box / its second moments the object fills
  rows, cols = masks.any(axis=2), masks.any(axis=1)
  box = rows.sum(1) * cols.sum(1)
  r2 = ((ys - cy[:, None, None])**2 + (xs - cx[:, None, None])**2) * masks
  return np.column_stack([area[:, 0] / box, r2.sum(axis=(1, 2)) / area[:, 0]**2])


def _lda_accuracy(x, y, n_train):
  mu, sd = x[:n_train].mean(0), x[:n_train].std(0) + 1e-6
  x = (x - mu) / sd
  classes = np.unique(y)
  means = np.stack([x[:n_train][y[:n_train] == c].mean(0) for c in classes])
  centered = x[:n_train] - means[y[:n_train]]
  prec = np.linalg.inv(np.cov(centered.T) + 1e-3 * np.eye(x.shape[1]))
  scores = x[n_train:] @ prec @ means.T - 0.5 * np.einsum("cd,de,ce->c", means, prec, means)
  return (scores.argmax(1) == y[n_train:]).mean()


def test_color_position_size_do_not_give_the_class_away(rendered):
  images, masks, labels = rendered
  acc = _lda_accuracy(_features(images, masks, "color_position_size"), labels, 1000)
  assert acc < 0.2 + 0.08, acc  # chance is 0.2; 500 test images
  # ... while two crude shape descriptors of the same masks do tell it (the check has teeth)
  assert _lda_accuracy(_features(images, masks, "shape"), labels, 1000) > 0.6


def test_builder_generates_locally_and_deterministically(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  cfg = dict(num_classes=4, image_size=24, num_train=60, num_validation=20, num_test=0, seed=5)
  builders = [shapes.prepare(str(tmp_path / d), **cfg) for d in ("a", "b")]
  assert builders[0].info.features["label"].names == ["circle", "square", "triangle", "cross"]
  assert set(builders[0].info.splits) == {"train", "validation"}
  runs = [list(tfds.as_numpy(b.as_dataset(split="train"))) for b in builders]
  assert len(runs[0]) == 60
  for ex_a, ex_b in zip(*runs):
    for key in ("image", "object_mask", "label"):
      np.testing.assert_array_equal(ex_a[key], ex_b[key])
  ex = runs[0][0]
  assert ex["image"].shape == (24, 24, 3) and ex["object_mask"].shape == (24, 24, 1)
  assert set(np.unique(ex["object_mask"])) == {0, 1}
  assert np.bincount([e["label"] for e in runs[0]]).tolist() == [15] * 4
  again = shapes.prepare(str(tmp_path / "a"), **cfg)  # reused, not regenerated
  assert again.data_dir == builders[0].data_dir


def test_bad_config_is_a_clear_error():
  with pytest.raises(ValueError, match="num_classes must be in 1..8"):
    shapes_render.render(0, 10, num_classes=9)
  with pytest.raises(ValueError, match="object_size must be"):
    shapes_render.render(0, 10, object_size=(0.2, 0.6))  # would not fit inside the image


def test_object_size_scales_the_mask_and_spreads_the_objects():
  default = shapes_render.render(5, 600, image_size=48, num_classes=5)[1]
  small = shapes_render.render(5, 600, image_size=48, num_classes=5, object_size=(0.12, 0.18))[1]
  # area goes with the radius squared: (0.15 / 0.30)^2 = 1/4 of the default's
  ratio = small.mean() / default.mean()
  assert 0.2 < ratio < 0.3, ratio
  center = lambda m: m[:, 23:25, 23:25].max(axis=(1, 2)).mean()  # object covers the center
  assert center(default) > 0.7 and center(small) < 0.3

"""Ignore masks (the penalty's region 'annotated'): image folders' cat/001.ignore.png and the
decoy shapes' patch, through the pipeline."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from cnnviz_jax.data import image_folder, pipeline, shapes, shapes_decoy
from cnnviz_jax.train import explanation_loss

ANNOTATED = dict(kind="input_gradient", region="annotated")


def _write(root, missing=()):
  """Two classes of 4 random 16-px images, each with an object box and an ignore corner."""
  rng = np.random.default_rng(0)
  truth = {}
  for name in ("cat", "dog"):
    (root / name).mkdir()
    for i in range(4):
      stem = root / name / f"{i:03d}"
      Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(f"{stem}.png")
      obj, ignore = np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)
      obj[4:12, 3:3 + i + 5] = 255
      ignore[:i + 2, 12:] = 255  # a different corner patch per image
      Image.fromarray(obj).save(f"{stem}.mask.png")
      if f"{name}/{i:03d}" not in missing:
        Image.fromarray(ignore).save(f"{stem}.ignore.png")
      truth[(name, i)] = (obj > 0, ignore > 0)
  image_folder.list_folder.cache_clear()
  return truth


def test_ignore_masks_reach_the_batches_beside_the_object_masks(tmp_path):
  truth = _write(tmp_path)
  listing = image_folder.list_folder(str(tmp_path))
  assert len(listing.paths) == 8  # neither kind of mask file is listed as an image
  cfg = dict(name="folder", root=str(tmp_path), image_size=16, batch_size=8,
             split_fractions=(1.0, 0.0, 0.0))
  it = pipeline.eval_iterator(cfg, split="train")
  assert it.source.has_object_mask and it.source.has_ignore_mask
  batch = next(iter(it))
  for row, position in enumerate(np.asarray(batch["index"])):
    name, file = listing.paths[position].split("/")[-2:]
    obj, ignore = truth[(name, int(file[:3]))]
    np.testing.assert_array_equal(np.asarray(batch["object_mask"])[row], obj)
    np.testing.assert_array_equal(np.asarray(batch["ignore_mask"])[row], ignore)


def test_augmented_masks_follow_the_same_warp(tmp_path):
  """Both masks travel as channels of one warp: an ignore mask equal to the object mask
  comes out equal, and each is the nearest-neighbor warp of its own file."""
  _write(tmp_path)
  for path in tmp_path.glob("*/*.mask.png"):  # make the ignore masks the object masks
    path.with_name(path.name.replace(".mask.", ".ignore.")).write_bytes(path.read_bytes())
  image_folder.list_folder.cache_clear()
  cfg = dict(name="folder", root=str(tmp_path), image_size=24, batch_size=8,
             split_fractions=(1.0, 0.0, 0.0),
             augment=dict(kind="keras", rotation=30.0, zoom=0.2, horizontal_flip=True))
  batch = next(pipeline.train_iterator(cfg))
  obj, ignore = np.asarray(batch["object_mask"]), np.asarray(batch["ignore_mask"])
  np.testing.assert_array_equal(obj, ignore)
  assert 0 < obj.mean() < 0.6 and set(np.unique(obj)) <= {0.0, 1.0}


def test_a_missing_ignore_mask_names_the_file_when_the_region_is_annotated(tmp_path):
  _write(tmp_path, missing=("cat/003",))
  source = image_folder.folder_source(str(tmp_path), "train", fractions=(1.0, 0.0, 0.0))
  assert source.has_object_mask and not source.has_ignore_mask
  explanation_loss.check_masks(source, dict(kind="input_gradient"))  # outside_object: fine
  with pytest.raises(ValueError, match=r"needs ignore masks .* 1 of 8 images have none, "
                                       r"e\.g\. .*cat/003\.png \(image folders: cat/001\.jpg "
                                       r"needs cat/001\.ignore\.png\)"):
    explanation_loss.check_masks(source, ANNOTATED)


def test_the_decoy_shapes_ignore_mask_is_exactly_the_patch(tmp_path):
  """Against the decoy-free twin: the pixels the patch changed lie in the ignore mask, and
  every ignore pixel has the patch's color, in one corner box, off the dilated object."""
  cfg = dict(num_classes=4, image_size=24, num_train=60, num_validation=8, num_test=60, seed=1)
  plain = shapes.prepare(str(tmp_path), **cfg)
  decoy = shapes.prepare(str(tmp_path), decoy=3, **cfg)
  assert "ignore_mask" not in plain.info.features
  for split in ("train", "test"):
    pairs = zip(tfds.as_numpy(plain.as_dataset(split=split, shuffle_files=False)),
                tfds.as_numpy(decoy.as_dataset(split=split, shuffle_files=False)))
    for a, b in pairs:
      ignore = b["ignore_mask"][..., 0] > 0
      changed = (a["image"] != b["image"]).any(-1)
      assert changed.any() and not (changed & ~ignore).any()
      colors = b["image"][ignore]
      assert (colors == colors[0]).all() and colors[0].tolist() in shapes_decoy.PALETTE.tolist()
      if split == "train":
        np.testing.assert_array_equal(colors[0], shapes_decoy.PALETTE[b["label"]])
      boxes = [ignore[r, c].sum() for r, c in shapes_decoy.corner_boxes(24, 3)]
      assert sorted(boxes)[-2] == 0 and 0 < ignore.sum() <= 9  # one corner
      near = shapes_decoy._dilate(  # pylint: disable=protected-access
          a["object_mask"][None, ..., 0] > 0)[0]
      assert not (ignore & near).any()

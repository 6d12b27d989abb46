"""Object masks of image folders: cat/001.jpg + cat/001.mask.png, through the pipeline."""
import numpy as np
import pytest
from PIL import Image

from cnnviz_jax.data import image_folder, pipeline
from cnnviz_jax.train import explanation_loss


def _write(root, with_masks=True, missing=()):
  rng = np.random.default_rng(0)
  truth = {}
  for name in ("cat", "dog"):
    (root / name).mkdir()
    for i in range(4):
      stem = root / name / f"{i:03d}"
      Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(f"{stem}.png")
      mask = np.zeros((16, 16), np.uint8)
      mask[2:2 + i + 3, 3:9] = 255  # a different box per image; 0/255 as masks are drawn
      truth[(name, i)] = mask > 0
      if with_masks and f"{name}/{i:03d}" not in missing:
        Image.fromarray(mask).save(f"{stem}.mask.png")
  image_folder.list_folder.cache_clear()
  return truth


def test_masks_next_to_images_reach_the_batches_and_are_not_images(tmp_path):
  truth = _write(tmp_path)
  listing = image_folder.list_folder(str(tmp_path))
  assert len(listing.paths) == 8  # the .mask.png files are not listed as images
  assert all(m == p.replace(".png", ".mask.png") for p, m in zip(listing.paths, listing.masks))
  cfg = dict(name="folder", root=str(tmp_path), image_size=16, batch_size=8,
             split_fractions=(1.0, 0.0, 0.0))
  it = pipeline.eval_iterator(cfg, split="train")
  assert it.source.has_object_mask
  batch = next(iter(it))
  masks = np.asarray(batch["object_mask"])  # (8, 16, 16) in {0, 1}
  for row, position in enumerate(np.asarray(batch["index"])):
    name, i = listing.paths[position].split("/")[-2:]
    np.testing.assert_array_equal(masks[row], truth[(name, int(i[:3]))].astype(np.float32))


def test_a_missing_mask_is_a_clear_error_when_the_penalty_needs_them(tmp_path):
  _write(tmp_path, missing=("dog/002",))
  source = image_folder.folder_source(str(tmp_path), "train", fractions=(1.0, 0.0, 0.0))
  assert not source.has_object_mask
  with pytest.raises(ValueError, match=r"1 of 8 images have none, e\.g\. .*dog/002\.png "
                                       r"\(image folders: cat/001\.jpg needs cat/001\.mask\.png\)"):
    explanation_loss.check_masks(source)


def test_a_mask_of_another_size_names_the_file(tmp_path):
  _write(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "cat" / "001.mask.png")
  source = image_folder.folder_source(str(tmp_path), "train", fractions=(1.0, 0.0, 0.0))
  with pytest.raises(ValueError, match=r"mask .*cat/001\.mask\.png is 5x5 but its image is 16x16"):
    source.load(np.arange(8))

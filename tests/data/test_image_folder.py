"""Image folders: odd formats become RGB, broken files are skipped and counted, clear errors."""
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cnnviz_jax.data import image_folder, pipeline, stats, transforms


def _rgb(seed, size=(20, 16)):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
  a, b = tmp_path / "cat", tmp_path / "dog"
  a.mkdir(), b.mkdir()
  for i in range(5):
    Image.fromarray(_rgb(i)).save(a / f"good{i}.jpg")
  for i in range(6):
    Image.fromarray(_rgb(10 + i)).save(b / f"good{i}.png")
  Image.fromarray(_rgb(20)[..., 0]).save(a / "gray.jpg")
  Image.fromarray(_rgb(21)).convert("CMYK").save(a / "cmyk.jpg")
  Image.fromarray(np.dstack([_rgb(22), np.full((20, 16), 128, np.uint8)])).save(a / "rgba.png")
  Image.fromarray(np.full((20, 16), 32768, np.uint16)).save(a / "sixteen.png")  # mid grey
  Image.fromarray(_rgb(23)).convert("P").save(a / "palette.png")
  (a / "zero.jpg").write_bytes(b"")
  whole = (a / "good0.jpg").read_bytes()
  (a / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
  (a / "fake.jpg").write_text("not a jpeg at all")
  (a / "notes.txt").write_text("hello")
  image_folder.list_folder.cache_clear()
  return tmp_path


def test_odd_formats_are_kept_and_broken_files_skipped_and_counted(folder, caplog):
  with caplog.at_level(logging.WARNING):
    listing = image_folder.list_folder(str(folder))
    image_folder.list_folder(str(folder))  # cached: reported once
  assert listing.class_names == ("cat", "dog")
  assert np.bincount(listing.labels).tolist() == [10, 6]
  reasons = {p.split("/")[-1]: r for p, r in listing.skipped}
  assert set(reasons) == {"zero.jpg", "truncated.jpg", "fake.jpg", "notes.txt"}
  assert reasons["zero.jpg"] == "zero bytes" and reasons["notes.txt"] == "not an image file"
  assert reasons["truncated.jpg"].startswith("unreadable")
  converted = {p.split("/")[-1] for p, c in zip(listing.paths, listing.convert) if c}
  assert converted == {"cmyk.jpg", "rgba.png", "sixteen.png", "palette.png"}
  warnings = [r for r in caplog.records if "skipped 4 unusable files" in r.getMessage()]
  assert len(warnings) == 1


def test_a_decompression_bomb_is_skipped_and_counted_before_decoding(tmp_path):
  """A 20,000 x 20,000 PNG of a few KB: PIL refuses it from its header (over twice its
  MAX_IMAGE_PIXELS), so it is skipped like a corrupt file, not decoded into 1.2 GB."""
  for name in ("cat", "dog"):
    (tmp_path / name).mkdir()
    Image.fromarray(_rgb(len(name))).save(tmp_path / name / "good.png")
  Image.new("1", (20_000, 20_000)).save(tmp_path / "cat" / "bomb.png")
  assert (tmp_path / "cat" / "bomb.png").stat().st_size < 100_000
  image_folder.list_folder.cache_clear()
  listing = image_folder.list_folder(str(tmp_path))
  assert [p.split("/")[-1] for p in listing.paths] == ["good.png", "good.png"]
  [(path, reason)] = listing.skipped
  assert path.endswith("bomb.png") and "DecompressionBombError" in reason


def test_every_kept_image_decodes_to_8bit_rgb(folder):
  src = image_folder.folder_source(str(folder), "train", fractions=(1.0, 0.0, 0.0))
  loaded = src.load(np.arange(src.num_examples))["image"]
  names = [p.split("/")[-1] for p in image_folder.list_folder(str(folder)).paths]
  for name, encoded in zip(names, loaded):
    image = transforms.decode(tf.constant(encoded)).numpy()
    assert image.shape == (20, 16, 3) and image.dtype == np.uint8, name
    if name == "sixteen.png":
      assert np.all(np.abs(image.astype(int) - 128) <= 1)  # 16-bit scaled, not clipped
    if name == "gray.jpg":
      assert np.array_equal(image[..., 0], image[..., 2])


def test_mean_std_is_numpys_over_the_decoded_pixels_16_bit_ones_scaled(tmp_path):
  """At the model's size eval resizing keeps the pixels, so stats.mean_std is numpy's mean
  and std of PIL's decoded pixels / 255; a 16-bit image counts as round(v / 257) (8 bits of
  its 16, where PIL's convert('RGB') would clip it at 255)."""
  (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
  expected = [_rgb(30 + i, (16, 16)) for i in range(3)]
  for i, rgb in enumerate(expected):
    Image.fromarray(rgb).save(tmp_path / "ab"[i % 2] / f"{i}.png")
  deep = np.random.default_rng(40).integers(0, 65536, (16, 16)).astype(np.uint16)
  Image.fromarray(deep).save(tmp_path / "b" / "deep.png")
  expected.append(np.repeat(np.round(deep / 257.0)[..., None], 3, -1))
  x = np.concatenate([e.reshape(-1, 3) for e in expected]).astype(np.float64) / 255.0
  image_folder.list_folder.cache_clear()
  mean, std = stats.mean_std(dict(name="folder", root=str(tmp_path), image_size=16,
                                  split_fractions=(1.0, 0.0, 0.0)))
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-6)
  np.testing.assert_allclose(std, x.std(0), rtol=1e-5)


def test_split_is_stratified_and_the_cap_is_per_class(folder):
  parts = [image_folder.folder_source(str(folder), s, fractions=(0.5, 0.25, 0.25))
           for s in ("train", "validation", "test")]
  assert [np.bincount(p.labels, minlength=2).tolist() for p in parts] == [[5, 3], [3, 2],
                                                                         [2, 1]]
  capped = image_folder.list_folder(str(folder), max_per_class=4, seed=1)
  assert np.bincount(capped.labels).tolist() == [4, 4]
  assert capped == image_folder.list_folder(str(folder), max_per_class=4, seed=1)


def test_empty_class_and_empty_root_are_clear_errors(tmp_path):
  (tmp_path / "ok").mkdir()
  Image.fromarray(_rgb(0)).save(tmp_path / "ok" / "x.png")
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
  with pytest.raises(ValueError, match=f"class folder '{tmp_path / 'empty'}' has no usable"):
    image_folder.list_folder(str(tmp_path))
  (tmp_path / "none").mkdir()
  with pytest.raises(ValueError, match="has no class sub-folders"):
    image_folder.list_folder(str(tmp_path / "none"))
  with pytest.raises(ValueError, match="does not exist"):
    image_folder.list_folder(str(tmp_path / "missing"))


def test_a_folder_runs_through_the_pipeline(folder):
  cfg = dict(name="folder", root=str(folder), batch_size=4, image_size=12,
             split_fractions=(0.5, 0.5, 0.0), augment=dict(kind="keras", rotation=20.0))
  batch = next(pipeline.train_iterator(cfg))
  assert batch["image"].shape == (4, 12, 12, 3)
  ev = pipeline.eval_iterator(cfg)
  index = np.concatenate([np.asarray(b["index"])[np.asarray(b["valid"]) > 0] for b in ev])
  assert sorted(index) == list(range(ev.num_examples)) and ev.num_examples == 8

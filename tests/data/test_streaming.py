"""Streaming (data larger than RAM): above cache_budget_mb, sources read by index (image
folders, tfds array_record) read each example when its step comes, and give the very batches,
resume and eval pass of the cached mode. Two streaming processes: test_pipeline.py."""
import dataclasses
import logging

import numpy as np
import pytest
from PIL import Image

import helpers
from pipeline_worker import SHAPES  # pylint: disable=import-error
from cnnviz_jax.data import config, image_folder, pipeline, datasets


@pytest.fixture(params=["masks", "plain"])
def folder(tmp_path, request):
  """3 classes x 12 images of mixed sizes. 'masks': one needs RGB conversion and each has an
  object mask (streaming reads them in Python); 'plain': JPEGs alone (read by a TF op)."""
  plain = request.param == "plain"
  rng = np.random.default_rng(1)
  for c, name in enumerate(("ant", "bee", "cow")):
    (tmp_path / name).mkdir()
    for i in range(12):
      h, w = 18 + (i * 5) % 13, 20 + c * 3
      stem = tmp_path / name / f"{i:02d}"
      pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      if i == 5 and not plain:
        Image.fromarray(pixels[..., 0]).save(f"{stem}.png")  # grayscale: converted to RGB
      else:
        Image.fromarray(pixels).save(f"{stem}.jpg", quality=90)
      mask = np.zeros((h, w), np.uint8)
      mask[2:2 + i % 7 + 3, 1:c + 6] = 255
      if not plain:
        Image.fromarray(mask).save(f"{stem}.mask.png")
  image_folder.list_folder.cache_clear()
  return str(tmp_path)


def _np(batch):
  return {k: np.asarray(v) for k, v in batch.items()}


@pytest.fixture
def load_log(monkeypatch):
  """Records the positions every source's `load` is asked for."""
  log = []
  real = datasets.get_source

  def logged(cfg, split):
    source = real(cfg, split)
    def load(pos):
      log.append(np.asarray(pos).copy())
      return source.load(pos)
    return dataclasses.replace(source, load=load)

  monkeypatch.setattr(datasets, "get_source", logged)
  return log


def test_a_streamed_folder_gives_the_cached_batches_resume_and_eval_pass(folder, load_log):
  cfg = dict(name="folder", root=folder, image_size=16, batch_size=8, seed=2,
             augment=config.KERAS_SEED_001, split_fractions=(0.6, 0.4, 0.0))
  cached = pipeline.train_iterator(cfg)
  assert not cached.streaming and sum(map(len, load_log)) == cached.num_examples
  load_log.clear()
  streamed = pipeline.train_iterator(cfg, cache_budget_mb=0)
  assert streamed.streaming and not load_log  # nothing read before its step
  assert "streamed" in streamed.describe()

  want = [_np(next(cached)) for _ in range(7)]  # 21 examples: 2 steps/epoch, 3 epochs
  plain = "object_mask" not in want[0]
  assert plain or want[0]["object_mask"].shape == (8, 16, 16)
  for step, batch in enumerate(want):
    helpers.assert_trees_equal(_np(next(streamed)), batch, f"step {step}")
  if plain:  # files read as they are: by tf.io.read_file, never through Python
    assert not load_log
  else:
    assert load_log and all(len(p) == 1 for p in load_log)  # one example per read

  streamed.set_state({"step": 3})  # the middle of the second epoch
  helpers.assert_trees_equal(_np(next(streamed)), want[3], "set_state(3)")
  resumed = pipeline.train_iterator(cfg, cache_budget_mb=0, start_step=5)
  helpers.assert_trees_equal(_np(next(resumed)), want[5], "start_step=5")

  ev_cached = pipeline.eval_iterator(cfg, eval_batch_size=8)
  ev_streamed = pipeline.eval_iterator(cfg, eval_batch_size=8, cache_budget_mb=0)
  assert ev_streamed.streaming and not ev_cached.streaming
  got = [_np(b) for b in ev_streamed]
  for i, (g, w) in enumerate(zip(got, map(_np, ev_cached), strict=True)):
    helpers.assert_trees_equal(g, w, f"eval batch {i}")
  index = np.concatenate([b["index"] for b in got])
  assert sorted(index[index >= 0]) == list(range(ev_cached.num_examples))  # each once


def test_the_budget_decides_from_the_encoded_bytes(tmp_path):
  rng = np.random.default_rng(0)
  for name in ("a", "b"):
    (tmp_path / name).mkdir()
    for i in range(10):  # noise PNGs ~190 kB: 20 of them ~3.8 MB
      Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(
          tmp_path / name / f"{i}.png")
  image_folder.list_folder.cache_clear()
  train_bytes = 16 * np.mean([p.stat().st_size for p in tmp_path.glob("*/*.png")])
  assert 2 < train_bytes / 2**20 < 4  # the 16 train images take 2-4 MB
  cfg = dict(name="folder", root=str(tmp_path), image_size=16, batch_size=4,
             split_fractions=(0.8, 0.2, 0.0))
  assert pipeline.train_iterator(cfg, cache_budget_mb=2).streaming
  assert not pipeline.train_iterator(cfg, cache_budget_mb=4).streaming
  assert not pipeline.eval_iterator(cfg, cache_budget_mb=2).streaming  # 4 images < 2 MB


def test_array_record_streams_the_tfrecord_batches(shapes_dir, shapes_array_record_dir):
  # The reference keeps decoded pixels in RAM (the shapes have one fixed size); the streamed
  # run decodes each example's bytes when its step comes: the same batches, bit for bit.
  base = dict(name="shapes", shapes=SHAPES, batch_size=8, image_size=16, seed=1,
              augment=config.KERAS_SEED_001)
  ref = dict(base, data_dir=shapes_dir)  # tfrecord, cached
  runs = {"array_record cached": dict(base, data_dir=shapes_array_record_dir,
                                      file_format="array_record"),
          "array_record streamed": dict(base, data_dir=shapes_array_record_dir,
                                        file_format="array_record", cache_budget_mb=0)}
  it = pipeline.train_iterator(ref, start_step=13)
  assert it.describe().endswith("cached in RAM (decoded)")
  want = [_np(next(it)) for _ in range(4)]  # crosses the epoch boundary at 15
  ev_want = {size: [_np(b) for b in pipeline.eval_iterator(ref, image_size=size)]
             for size in (16, 12)}  # as stored (no resize), and resized
  for name, cfg in runs.items():
    it = pipeline.train_iterator(cfg, start_step=13)
    assert it.streaming == name.endswith("streamed")
    assert it.describe().endswith("(decoded)") != it.streaming
    for step, batch in enumerate(want):
      helpers.assert_trees_equal(_np(next(it)), batch, f"{name} step {13 + step}")
    for size, batches in ev_want.items():
      ev = [_np(b) for b in pipeline.eval_iterator(cfg, image_size=size)]
      for i, (g, w) in enumerate(zip(ev, batches, strict=True)):
        helpers.assert_trees_equal(g, w, f"{name} eval at {size} px, batch {i}")


def test_a_source_read_only_in_order_caches_with_a_warning(shapes_dir, caplog):
  cfg = dict(name="shapes", data_dir=shapes_dir, shapes=SHAPES, batch_size=8, image_size=16,
             cache_budget_mb=0)
  with caplog.at_level(logging.WARNING):
    it = pipeline.train_iterator(cfg)
  assert not it.streaming and it.describe().endswith("cached in RAM")  # bytes: no room
  assert "cannot stream" in caplog.text and "cache_budget_mb 0" in caplog.text


def test_bad_streaming_settings_are_clear_errors():
  with pytest.raises(ValueError, match="unknown file_format 'parquet'; valid: None"):
    config.resolve(None, file_format="parquet")
  with pytest.raises(ValueError, match="cache_budget_mb must be an int >= 0; got -1"):
    config.resolve(None, cache_budget_mb=-1)

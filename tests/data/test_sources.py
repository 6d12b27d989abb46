"""The seeds' tfds sources through tfds.testing.mock_data (no download), splits, stats."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnnviz_jax.data import pipeline, splits, stats, tfds_sources

N = 240  # mock examples per tfds split


@pytest.fixture(autouse=True)
def mock_tfds():
  tfds_sources.clear_caches()
  with tfds.testing.mock_data(num_examples=N):
    yield
  tfds_sources.clear_caches()


@pytest.mark.parametrize("name", ["cats_vs_dogs", "tf_flowers"])
def test_single_split_datasets_get_a_stratified_deterministic_three_way_split(name):
  parts = {s: tfds_sources.tfds_source(name, s, fractions=(0.6, 0.2, 0.2)) for s in
           splits.SPLIT_NAMES}
  sizes = {s: p.num_examples for s, p in parts.items()}
  assert sum(sizes.values()) == N and abs(sizes["train"] - 0.6 * N) <= len(parts["train"]
                                                                          .class_names)
  all_labels = tfds_sources._scan_labels(tfds_sources._builder(name, None, True), "train")
  for split, frac in zip(splits.SPLIT_NAMES, (0.6, 0.2, 0.2)):
    counts = np.bincount(parts[split].labels, minlength=len(parts[split].class_names))
    expected = np.bincount(all_labels, minlength=len(counts)) * frac
    assert np.all(np.abs(counts - expected) <= 1)  # stratified: per class within 1
  again = tfds_sources.tfds_source(name, "validation", fractions=(0.6, 0.2, 0.2))
  np.testing.assert_array_equal(again.labels, parts["validation"].labels)


def test_stratified_split_parts_are_disjoint_and_cover_everything():
  labels = np.random.default_rng(0).integers(0, 7, 1000)
  parts = splits.stratified_split(labels, (0.7, 0.2, 0.1), seed=3)
  together = np.concatenate(parts)
  assert sorted(together) == list(range(1000))
  assert [len(p) for p in parts] == pytest.approx([700, 200, 100], abs=7)
  with pytest.raises(ValueError, match="sum to 1"):
    splits.stratified_split(labels, (0.7, 0.2))


def test_oxford_flowers102_keeps_its_official_splits():
  src = tfds_sources.tfds_source("oxford_flowers102", "validation")
  assert src.num_examples == N and len(src.class_names) == 102


def test_caltech101_defaults_to_the_seed_classes_and_carves_validation_from_train():
  tfds_sources.clear_caches()
  with tfds.testing.mock_data(num_examples=1500):  # ~70 images of the five classes
    _check_caltech101()


def _check_caltech101():
  train = tfds_sources.tfds_source("caltech101", "train", fractions=(0.75, 0.25, 0.0))
  val = tfds_sources.tfds_source("caltech101", "validation", fractions=(0.75, 0.25, 0.0))
  test = tfds_sources.tfds_source("caltech101", "test")
  assert train.class_names == tfds_sources.CALTECH101_SEED_CLASSES
  for src in (train, val, test):
    assert src.num_examples > 0 and set(src.labels) <= set(range(5))
  names = tfds_sources._builder("caltech101", None, True).info.features["label"].names
  raw = tfds_sources._scan_labels(tfds_sources._builder("caltech101", None, True), "train")
  in_subset = np.isin(raw, [names.index(c) for c in tfds_sources.CALTECH101_SEED_CLASSES])
  assert train.num_examples + val.num_examples == in_subset.sum()
  with pytest.raises(ValueError, match="has no classes \\['unicorn'\\]"):
    tfds_sources.tfds_source("caltech101", "train", classes=("brain", "unicorn"))


def test_unknown_names_are_clear_errors():
  with pytest.raises(ValueError, match="unknown tfds source 'imagenet2012'; valid: cats_vs_dogs"):
    tfds_sources.tfds_source("imagenet2012", "train")
  with pytest.raises(ValueError, match="unknown split 'val'; valid: train, validation, test"):
    tfds_sources.tfds_source("tf_flowers", "val")


def test_a_mocked_source_runs_through_the_pipeline():
  cfg = dict(name="tf_flowers", batch_size=8, image_size=24, normalization="tf",
             augment=dict(kind="torchvision", horizontal_flip=True), split_fractions=(0.5, 0.25,
                                                                                     0.25))
  batch = next(pipeline.train_iterator(cfg))
  assert batch["image"].shape == (8, 24, 24, 3) and "object_mask" not in batch
  assert -1.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0
  ev = pipeline.eval_iterator(cfg, split="test", eval_batch_size=16, resize_size=28)
  index = np.concatenate([np.asarray(b["index"])[np.asarray(b["valid"]) > 0] for b in ev])
  assert sorted(index) == list(range(ev.num_examples))


def test_stats_count_examples_per_split_and_class():
  out = stats.dataset_stats(dict(name="cats_vs_dogs"))
  assert out["class_names"] == ["cat", "dog"]
  assert sum(s["num_examples"] for s in out["splits"].values()) == N
  for s in out["splits"].values():
    assert sum(s["per_class"].values()) == s["num_examples"]

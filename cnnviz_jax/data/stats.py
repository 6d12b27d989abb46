"""Dataset statistics for reports: class names, counts per split and class, pixel mean/std."""
import numpy as np
import tensorflow as tf

from cnnviz_jax.data import config as config_lib
from cnnviz_jax.data import datasets, model_input, splits


def dataset_stats(config=None, split_names=splits.SPLIT_NAMES, **overrides) -> dict:
  """{'name', 'class_names', 'splits': {split: {'num_examples', 'per_class': {class: n}}}}.

  Reads labels only (no image is decoded). Splits a dataset does not have are left out.
  """
  cfg = config_lib.resolve(config, **overrides)
  out = {"name": cfg["name"], "class_names": None, "splits": {}}
  for split in split_names:
    try:
      src = datasets.get_source(cfg, split)
    except (ValueError, KeyError):  # an empty or absent split (e.g. shapes num_test=0)
      continue
    counts = np.bincount(src.labels, minlength=src.num_classes)
    out["class_names"] = list(src.class_names)
    out["splits"][split] = {"num_examples": int(src.num_examples),
                            "per_class": dict(zip(src.class_names, map(int, counts)))}
  return out


def mean_std(config=None, split: str = "train", max_images: int = 1000,
             **overrides) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and std on the [0, 1] scale, after eval resizing, from up to
  `max_images` evenly spaced images of `split` (for normalization='standardize')."""
  cfg = config_lib.resolve(config, **overrides)
  src = datasets.get_source(cfg, split)
  positions = np.unique(np.linspace(0, src.num_examples - 1, min(max_images,
                                                                  src.num_examples)).astype(int))
  unit = {**cfg, "normalization": "unit"}  # the model's eval input, on the [0, 1] scale
  total, total_sq, count = np.zeros(3), np.zeros(3), 0
  for encoded in src.load(positions)["image"]:
    image = model_input.model_input(unit, tf.constant(encoded))["image"]
    x = image.numpy().reshape(-1, 3).astype(np.float64)
    total, total_sq, count = total + x.sum(0), total_sq + (x * x).sum(0), count + len(x)
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
  return tuple(map(float, mean)), tuple(map(float, std))

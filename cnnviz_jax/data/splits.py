"""Deterministic, stratified train/validation/test splits of a labeled list of examples."""
from collections.abc import Sequence

import numpy as np

from cnnviz_jax.errors import ConfigError, check_one_of

SPLIT_NAMES = ("train", "validation", "test")


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int = 0
                     ) -> list[np.ndarray]:
  """Splits positions 0..N-1 into len(fractions) parts with the same class proportions.

  Within each class the positions are permuted by `seed`, then cut at the cumulative
  fractions (largest-remainder rounding, so every part's size per class is within 1 of
  fraction * class count). Returns sorted position arrays; same inputs -> same parts.
  """
  fractions = np.asarray(fractions, np.float64)
  if fractions.ndim != 1 or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
    raise ConfigError(f"split fractions must be >= 0 and sum to 1; got {tuple(fractions)}")
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  parts = [[] for _ in fractions]
  for c in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == c))
    cuts = _largest_remainder(len(members), fractions).cumsum()[:-1]
    for part, chunk in zip(parts, np.split(members, cuts)):
      part.append(chunk)
  return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def _largest_remainder(n: int, fractions: np.ndarray) -> np.ndarray:
  """Integer sizes summing to n, each within 1 of n * fraction."""
  raw = n * fractions
  sizes = np.floor(raw).astype(np.int64)
  order = np.argsort(-(raw - sizes), kind="stable")
  sizes[order[:n - sizes.sum()]] += 1
  return sizes


def split_index(split: str) -> int:
  check_one_of(split, SPLIT_NAMES, "split")
  return SPLIT_NAMES.index(split)

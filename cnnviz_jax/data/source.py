"""A dataset split as the pipeline sees it.

A `Source` is one split in a fixed order (positions 0..N-1), with every label known up
front, so each process can compute the same sharding without reading images; `load` then
returns the encoded images (and masks) of only the positions a process asks for. The datasets
(tfds_sources.py, image_folder.py) make them; datasets.py picks one by name.
"""
import dataclasses
from collections.abc import Callable

import numpy as np

# The per-pixel masks a dataset may carry beside its images, {0, 1}: the object (the "right
# reasons"), and what must not matter (an annotated confounder, e.g. a decoy patch).
MASK_KEYS = ("object_mask", "ignore_mask")


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  split: str
  class_names: tuple[str, ...]
  labels: np.ndarray  # (N,) int32, in position order
  # sorted positions (n,) -> {'image': (n,) encoded bytes, 'object_mask'?, 'ignore_mask'?:
  # (n,) PNG bytes}
  load: Callable[[np.ndarray], dict[str, np.ndarray]]
  has_object_mask: bool = False
  missing_masks: tuple[str, ...] = ()  # examples that have no mask where others do (folders)
  has_ignore_mask: bool = False
  missing_ignore_masks: tuple[str, ...] = ()  # as missing_masks, for the ignore masks
  # `load` of a few positions costs only their bytes (files), not a pass over the split
  # (tfds record files): such a source can stream instead of caching (data/readers.py)
  random_access: bool = False
  mean_encoded_bytes: float = 0.0  # per example, as stored: the cache's size estimate
  # per position, a file whose bytes are the encoded image (no conversion, no mask): then
  # streaming reads it with a TensorFlow op, no Python (and no GIL) per example
  files: tuple[str, ...] | None = None
  # (height, width) every image of the split has, where the dataset fixes it (a tfds feature
  # of static shape): the pipeline may then keep decoded pixels in RAM instead of bytes
  image_shape: tuple[int, int] | None = None

  @property
  def num_examples(self) -> int:
    return len(self.labels)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def mask_keys(self) -> tuple[str, ...]:
    """The MASK_KEYS that `load` returns."""
    return tuple(k for k, has in zip(MASK_KEYS, (self.has_object_mask, self.has_ignore_mask))
                 if has)

"""A dataset split as the pipeline sees it, and the dispatch from a config name to it.

A `Source` is one split in a fixed order (positions 0..N-1), with every label known up
front, so each process can compute the same sharding without reading images; `load` then
returns the encoded images of only the positions a process asks for.
"""
import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

TFDS_NAMES = ("cats_vs_dogs", "tf_flowers", "oxford_flowers102", "caltech101")
NAMES = ("shapes", "folder") + TFDS_NAMES


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  split: str
  class_names: tuple[str, ...]
  labels: np.ndarray  # (N,) int32, in position order
  # sorted positions (n,) -> {'image': (n,) encoded bytes, 'object_mask'?: (n,) PNG bytes}
  load: Callable[[np.ndarray], dict[str, np.ndarray]]
  has_object_mask: bool = False
  missing_masks: tuple[str, ...] = ()  # examples that have no mask where others do (folders)

  @property
  def num_examples(self) -> int:
    return len(self.labels)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def get_source(config: Mapping, split: str) -> Source:
  """The `split` of the dataset named by config['name'] (see config.default_config)."""
  name = config["name"]
  # Imported here: each source pulls in its own dependencies (tfds builders, PIL scans).
  if name == "shapes":
    from cnnviz_jax.data import tfds_sources  # pylint: disable=import-outside-toplevel
    return tfds_sources.shapes_source(split, data_dir=config.get("data_dir"),
                                      **dict(config.get("shapes") or {}))
  if name in TFDS_NAMES:
    from cnnviz_jax.data import tfds_sources  # pylint: disable=import-outside-toplevel
    return tfds_sources.tfds_source(
        name, split, data_dir=config.get("data_dir"), fractions=config["split_fractions"],
        classes=config.get("classes"), seed=config.get("split_seed", 0),
        download=config.get("download", True))
  if name == "folder":
    from cnnviz_jax.data import image_folder  # pylint: disable=import-outside-toplevel
    if not config.get("root"):
      raise ValueError("dataset 'folder' needs config.root = a directory of class folders")
    return image_folder.folder_source(
        config["root"], split, fractions=config["split_fractions"],
        max_per_class=config.get("max_per_class"), seed=config.get("split_seed", 0))
  raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(NAMES)}")

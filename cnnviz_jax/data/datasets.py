"""The datasets a data config can name, and the dispatch from that name to a split's `Source`
(source.py: what a split is; tfds_sources.py, image_folder.py: how each kind is read)."""
from collections.abc import Mapping

from cnnviz_jax.data.source import Source
from cnnviz_jax.errors import ConfigError, check_one_of

TFDS_NAMES = ("cats_vs_dogs", "tf_flowers", "oxford_flowers102", "caltech101")
NAMES = ("shapes", "decoy_digits", "folder") + TFDS_NAMES


def get_source(config: Mapping, split: str) -> Source:
  """The `split` of the dataset named by config['name'] (see config.default_config)."""
  name = config["name"]
  check_one_of(name, NAMES, "dataset")
  # Imported here: each source pulls in its own dependencies (tfds builders, PIL scans).
  if name == "shapes":
    from cnnviz_jax.data import tfds_sources  # pylint: disable=import-outside-toplevel
    return tfds_sources.shapes_source(split, data_dir=config.get("data_dir"),
                                      file_format=config.get("file_format"),
                                      **dict(config.get("shapes") or {}))
  if name == "decoy_digits":
    from cnnviz_jax.data import tfds_sources  # pylint: disable=import-outside-toplevel
    return tfds_sources.decoy_digits_source(split, data_dir=config.get("data_dir"),
                                            file_format=config.get("file_format"),
                                            **dict(config.get("digits") or {}))
  if name in TFDS_NAMES:
    from cnnviz_jax.data import tfds_sources  # pylint: disable=import-outside-toplevel
    return tfds_sources.tfds_source(
        name, split, data_dir=config.get("data_dir"), fractions=config["split_fractions"],
        classes=config.get("classes"), seed=config.get("split_seed", 0),
        download=config.get("download", True), file_format=config.get("file_format"))
  from cnnviz_jax.data import image_folder  # pylint: disable=import-outside-toplevel  ('folder')
  if not config.get("root"):
    raise ConfigError("dataset 'folder' needs config.root = a directory of class folders")
  return image_folder.folder_source(
      config["root"], split, fractions=config["split_fractions"],
      max_per_class=config.get("max_per_class"), seed=config.get("split_seed", 0))

"""The synthetic "shapes" dataset as a real tfds builder, generated locally (no download).

    builder = shapes.prepare(data_dir, num_classes=5, image_size=32, num_train=6000)
    ds = builder.as_dataset(split="train")  # {'image', 'object_mask', 'label'[, 'ignore_mask']}

Each configuration (classes, size, split sizes, distractor probability, object size, seed)
gets its own tfds config name, so several coexist in one data_dir and a prepared one is reused.
Generation is deterministic from the seed: the same config writes the same bytes. Decoy
configs also carry 'ignore_mask', the patch's pixels (since 1.1.0).
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.data import config as data_config
from cnnviz_jax.data import shapes_decoy, shapes_render, splits
from cnnviz_jax.errors import check_fields

VERSION = "1.1.0"
RELEASE_NOTES = {"1.0.0": "first", VERSION: "decoy configs carry the patch's ignore_mask"}


@dataclasses.dataclass(eq=False, kw_only=True)
class ShapesConfig(tfds.core.BuilderConfig):
  """The fields of data_config.SHAPES (their defaults live there)."""
  num_classes: int
  image_size: int
  num_train: int
  num_validation: int
  num_test: int
  distractor_prob: float
  object_size: tuple[float, float]
  seed: int
  decoy: int  # side (px) of a class-colored corner patch, see shapes_decoy.py; 0: none


def config_name(num_classes: int, image_size: int, num_train: int, num_validation: int,
                num_test: int, distractor_prob: float, object_size: tuple[float, float],
                seed: int, decoy: int) -> str:
  """A tfds config name that spells out every generation parameter."""
  size = ("" if tuple(object_size) == shapes_render.OBJECT_SIZE  # default: the names of 1.0.0
          else f"_o{round(object_size[0] * 100)}-{round(object_size[1] * 100)}")
  decoy_part = f"_decoy{decoy}" if decoy else ""  # none: the names of 1.0.0
  return (f"c{num_classes}_s{image_size}_n{num_train}-{num_validation}-{num_test}"
          f"_d{round(distractor_prob * 100)}{size}{decoy_part}_seed{seed}")


def make_config(**overrides) -> ShapesConfig:
  """overrides: fields of data_config.SHAPES (the rest keep its defaults). decoy: a
  `decoy`-pixel patch in a corner, colored by the class in train and validation and at
  random in test (a confounder, shapes_decoy.py); 0: none."""
  check_fields(overrides, data_config.SHAPES, "config.data.shapes.")
  args = {**data_config.SHAPES, **overrides}
  args.update(object_size=tuple(args["object_size"]), decoy=int(args["decoy"]))
  return ShapesConfig(name=config_name(**args), version=VERSION, release_notes=RELEASE_NOTES,
                      description="synthetic shapes with object masks", **args)


class Shapes(tfds.core.GeneratorBasedBuilder):
  """One object per image whose shape is the class; color/position/size/background random."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = RELEASE_NOTES
  BUILDER_CONFIGS = [make_config()]  # the demo: 5 classes, 32x32, 6000/1000/1000

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # tfds 4.9.10 probes `importlib_resources` (a py<3.9-only dependency, not installed)
    # to find this file when the builder lives in a regular package; say it directly.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    size = cfg.image_size
    ignore = {"ignore_mask": tfds.features.Image(shape=(size, size, 1))} if cfg.decoy else {}
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 3)),
            "object_mask": tfds.features.Image(shape=(size, size, 1)),  # {0, 1}
            "label": tfds.features.ClassLabel(names=shapes_render.SHAPES[:cfg.num_classes]),
            **ignore,  # {0, 1}: the decoy patch
        }),
        supervised_keys=("image", "label"),
        description=__doc__,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    cfg = self.builder_config
    sizes = (cfg.num_train, cfg.num_validation, cfg.num_test)
    return {name: self._generate_examples(i, n)
            for i, (name, n) in enumerate(zip(splits.SPLIT_NAMES, sizes)) if n > 0}

  def _generate_examples(self, split_index: int, num_examples: int):
    cfg = self.builder_config
    # Independent streams per split: no image is shared between train and test.
    seed = np.random.SeedSequence([cfg.seed, split_index])
    images, masks, labels = shapes_render.render(
        seed, num_examples, cfg.image_size, cfg.num_classes, cfg.distractor_prob,
        cfg.object_size)
    patches = None
    if cfg.decoy:  # its own stream: the objects and masks are the decoy-free config's
      images, patches = shapes_decoy.place_decoys(
          np.random.SeedSequence([cfg.seed, split_index, 1]), images, masks, labels, cfg.decoy,
          class_colored=splits.SPLIT_NAMES[split_index] != "test")
    for i in range(num_examples):
      # PNG bytes via PIL: ~10x faster than tfds' per-image TF graph call for small images
      ignore = {} if patches is None else {"ignore_mask": storage.png_bytes(patches[i])}
      yield i, {"image": storage.png_bytes(images[i]), "object_mask": storage.png_bytes(masks[i]),
                "label": labels[i], **ignore}


def prepare(data_dir: str | None = None, file_format: str | None = None,
            **config) -> tfds.core.DatasetBuilder:
  """Builds (once) and returns the shapes builder for `config` (see make_config's args);
  file_format: tfds' ('tfrecord' by default; 'array_record' is read by index)."""
  cfg = make_config(**config)
  # tfds refuses a custom config object named like a predefined one: pass the name then.
  predefined = {c.name for c in Shapes.BUILDER_CONFIGS}
  builder = Shapes(config=cfg.name if cfg.name in predefined else cfg, data_dir=data_dir,
                   file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      compute_stats=tfds.download.ComputeStatsMode.SKIP))  # stats: slow and unused
  return builder

"""Decoy digits: real handwriting with Ross et al.'s decoy swatch, a tfds builder (no download).

    builder = decoy_digits.prepare(data_dir, decoy=4)
    ds = builder.as_dataset(split="train")  # {'image', 'object_mask', 'ignore_mask', 'label'}

Ross, Hughes & Doshi-Velez, "Right for the Right Reasons: Training Differentiable Models by
Constraining their Explanations", IJCAI 2017 (arXiv:1703.03717), section 4.1, Decoy MNIST:
a 4×4 swatch in a random corner of each 28×28 digit, grey level 255 − 25·label in training,
255 − 25·(a random digit) in test; the annotation A marks the swatch.

The digits are scikit-learn's (`sklearn.datasets.load_digits`: 1,797 handwritten digits from
the UCI optical-recognition set, 8×8 cells of 17 grey levels; the data ships inside
scikit-learn, nothing is downloaded; `pip install cnnviz_jax[digits]`). Geometry: each 8×8
digit is upsampled bilinearly to 20×20 and centered in a black 28×28 frame, white ink as in
MNIST, which size-normalizes its digits into a 20×20 box centered in 28×28. So the 4×4 swatch
stands to the digit as in Decoy MNIST (a fifth of its side), and it lies in the 4-pixel
margin, never on the ink. (Upsampling to 28 and painting over the digit's corner would make
the swatch relatively smaller and partly hide the strokes.)
The swatch: Ross's grey level 255 − 25·label in train and validation, 255 − 25·(a uniformly
random digit) in test; its corner is random in every split. The decoy-free twin (decoy=0)
holds the same digits in the same splits without swatches.
Splits: stratified 60 / 10 / 30 % (1,078 / 180 / 539) of the 1,797, fixed by `seed`: the
test set is the larger, as the goals compare test accuracies (binomial SE ~0.7 points at
97%). Masks: object_mask = the digit's ink (upsampled value > 0); ignore_mask = the swatch.
Images are stored grey (one channel); the pipeline decodes them to RGB like every dataset.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.data import config as data_config
from cnnviz_jax.data import splits
from cnnviz_jax.errors import check_fields

VERSION = "1.0.0"
IMAGE_SIZE = 28  # MNIST's frame
DIGIT_SIZE = 20  # MNIST's digit box; the margin is (28 − 20) / 2 = 4 pixels
FRACTIONS = (0.6, 0.1, 0.3)  # train / validation / test


@dataclasses.dataclass(eq=False, kw_only=True)
class DecoyDigitsConfig(tfds.core.BuilderConfig):
  """The fields of data_config.DIGITS (their defaults live there)."""
  decoy: int  # swatch side in pixels (Ross: 4); 0: the decoy-free twin
  seed: int  # the split and the swatches' corners and test grey levels


def make_config(**overrides) -> DecoyDigitsConfig:
  """overrides: fields of data_config.DIGITS (the rest keep its defaults)."""
  check_fields(overrides, data_config.DIGITS, "config.data.digits.")
  args = {**data_config.DIGITS, **overrides}
  decoy, seed = int(args["decoy"]), int(args["seed"])
  margin = (IMAGE_SIZE - DIGIT_SIZE) // 2
  if not 0 <= decoy <= margin:
    raise ValueError(f"config.data.digits.decoy must be in 0..{margin} pixels (the margin "
                     f"around the digit); got {decoy}")
  name = f"s{IMAGE_SIZE}{f'_decoy{decoy}' if decoy else ''}_seed{seed}"
  return DecoyDigitsConfig(name=name, version=VERSION, release_notes={VERSION: "first"},
                           description="scikit-learn's digits with a decoy swatch",
                           decoy=decoy, seed=seed)


def upsample(digits: np.ndarray, size: int) -> np.ndarray:
  """(N, h, w) -> (N, size, size) float64, bilinear with half-pixel centers (edges clamped)."""
  def weights(n):  # (size, n): each output pixel's interpolation weights over the n inputs
    at = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(at).astype(int)
    high = np.minimum(low + 1, n - 1)
    w = np.zeros((size, n))
    np.add.at(w, (np.arange(size), low), 1 - (at - low))
    np.add.at(w, (np.arange(size), high), at - low)
    return w
  rows, cols = weights(digits.shape[1]), weights(digits.shape[2])
  return np.einsum("ih,nhw,jw->nij", rows, digits.astype(np.float64), cols)


def render(digits: np.ndarray) -> np.ndarray:
  """(N, 8, 8) in 0..16 -> uint8 (N, 28, 28): white ink on black, centered in the margin."""
  ink = np.clip(np.rint(upsample(digits / 16.0, DIGIT_SIZE) * 255), 0, 255).astype(np.uint8)
  margin = (IMAGE_SIZE - DIGIT_SIZE) // 2
  out = np.zeros((len(digits), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
  out[:, margin:margin + DIGIT_SIZE, margin:margin + DIGIT_SIZE] = ink
  return out


def add_swatches(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, side: int,
                 label_coded: bool) -> tuple[np.ndarray, np.ndarray]:
  """(images with a `side`-pixel swatch in a random corner, the swatches' masks), uint8.

  Grey level 255 − 25·digit (Ross et al.'s), digit = the label (label_coded: train and
  validation) or a uniformly random one (test).
  """
  n = len(labels)
  corner = rng.integers(0, 4, n)
  digit = labels if label_coded else rng.integers(0, 10, n)
  out, masks = images.copy(), np.zeros_like(images)
  near, far = slice(0, side), slice(IMAGE_SIZE - side, IMAGE_SIZE)
  for k, (rows, cols) in enumerate([(near, near), (near, far), (far, near), (far, far)]):
    chosen = np.flatnonzero(corner == k)
    out[chosen, rows, cols] = (255 - 25 * digit[chosen]).astype(np.uint8)[:, None, None]
    masks[chosen, rows, cols] = 1
  return out, masks


def load_digits() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits: ((1797, 8, 8) values 0..16, (1797,) labels)."""
  try:
    from sklearn import datasets  # pylint: disable=import-outside-toplevel  (an extra)
  except ImportError as e:
    raise ImportError("the decoy digits need scikit-learn: pip install cnnviz_jax[digits]") from e
  bunch = datasets.load_digits()
  return bunch.images, bunch.target.astype(np.int64)


class DecoyDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's handwritten digits at 28 px with a label-coded corner swatch."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {VERSION: "Initial release."}
  BUILDER_CONFIGS = [make_config()]

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:  # as shapes.Shapes: tfds cannot find it by itself
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    shape = (IMAGE_SIZE, IMAGE_SIZE, 1)
    ignore = {"ignore_mask": tfds.features.Image(shape=shape)} if self.builder_config.decoy \
        else {}
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=shape),
            "object_mask": tfds.features.Image(shape=shape),  # {0, 1}: the ink
            "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
            **ignore,  # {0, 1}: the swatch
        }),
        supervised_keys=("image", "label"),
        description=__doc__,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    digits, labels = load_digits()
    parts = splits.stratified_split(labels, FRACTIONS, self.builder_config.seed)
    return {name: self._generate_examples(i, digits[part], labels[part])
            for i, (name, part) in enumerate(zip(splits.SPLIT_NAMES, parts))}

  def _generate_examples(self, split_index: int, digits: np.ndarray, labels: np.ndarray):
    cfg = self.builder_config
    images = render(digits)
    ink = (images > 0).astype(np.uint8)
    swatches = None
    if cfg.decoy:
      rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, split_index, 1]))
      images, swatches = add_swatches(rng, images, labels, cfg.decoy,
                                      label_coded=splits.SPLIT_NAMES[split_index] != "test")
    for i, label in enumerate(labels):
      ignore = {} if swatches is None else {"ignore_mask": storage.png_bytes(swatches[i])}
      yield i, {"image": storage.png_bytes(images[i]), "object_mask": storage.png_bytes(ink[i]),
                "label": int(label), **ignore}


def prepare(data_dir: str | None = None, file_format: str | None = None,
            **config) -> tfds.core.DatasetBuilder:
  """Builds (once) and returns the decoy-digits builder for `config` (data_config.DIGITS)."""
  cfg = make_config(**config)
  predefined = {c.name for c in DecoyDigits.BUILDER_CONFIGS}
  builder = DecoyDigits(config=cfg.name if cfg.name in predefined else cfg, data_dir=data_dir,
                        file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      compute_stats=tfds.download.ComputeStatsMode.SKIP))
  return builder

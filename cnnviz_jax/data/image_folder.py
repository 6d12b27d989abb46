"""Image folders `root/<class>/**/<image>` as a Source, checked before any epoch starts.

Every file is opened and fully decoded once when the folder is listed (JPEGs at reduced
scale, which still reads every byte), so corrupt, truncated, zero-byte and non-image files
are skipped and counted up front, identically on every host, never mid-epoch. The count
and the first few paths are logged once. Grayscale, RGBA, palette, CMYK and 16-bit images
are converted to 8-bit RGB (re-encoded as PNG) when loaded; RGB/gray JPEGs and 8-bit
PNGs go to TF's decoder unchanged. The root may be local or a URL (gs://bucket/images:
cnnviz_jax/storage.py); every file is read as bytes and decoded from memory.

Object masks (optional, for the explanation penalty): `cat/001.mask.png` next to
`cat/001.jpg` (the image's name without its extension, plus MASK_SUFFIX), the image's size,
grayscale or RGB, any non-zero pixel is the object. Ignore masks alike: `cat/001.ignore.png`
(IGNORE_SUFFIX), non-zero where the image must not matter (the penalty's annotated region).
Mask files are never listed as images. When every kept image of a split has one, the split
carries 'object_mask' (resp. 'ignore_mask').
"""
import dataclasses
import functools
import io
import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from cnnviz_jax import storage
from cnnviz_jax.data import splits
from cnnviz_jax.data.source import Source
from cnnviz_jax.errors import UserInputError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
_NATIVE = {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L")}  # TF decodes as-is
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
MASK_SUFFIX = ".mask.png"
IGNORE_SUFFIX = ".ignore.png"
_SIDECARS = (MASK_SUFFIX, IGNORE_SUFFIX)


@dataclasses.dataclass(frozen=True)
class FolderListing:
  root: str
  class_names: tuple[str, ...]
  paths: tuple[str, ...]  # kept images, grouped by class, sorted within a class
  labels: np.ndarray  # (N,) int32
  convert: np.ndarray  # (N,) bool: needs PIL conversion to RGB
  skipped: tuple[tuple[str, str], ...]  # (path, reason)
  masks: tuple[str | None, ...] = ()  # per path: its MASK_SUFFIX file, None if it has none
  ignores: tuple[str | None, ...] = ()  # per path: its IGNORE_SUFFIX file, None if none
  sizes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))  # bytes


def check_image(path: str) -> tuple[bool, bool, str, int]:
  """(usable, needs_conversion, reason if not usable, bytes) for one file."""
  if not path.lower().endswith(EXTENSIONS):
    return False, False, "not an image file", 0
  try:
    data = storage.path(path).read_bytes()
    if not data:
      return False, False, "zero bytes", 0
    with Image.open(io.BytesIO(data)) as img:
      fmt, mode = img.format, img.mode
      if fmt == "JPEG":
        img.draft("RGB", (img.width // 8 + 1, img.height // 8 + 1))  # fast, reads all data
      img.load()  # raises on truncated / corrupt data
  except Exception as e:  # pylint: disable=broad-except
    return False, False, f"unreadable ({type(e).__name__}: {e})", len(data)
  return True, (fmt, mode) not in _NATIVE, "", len(data)


def decode_rgb(encoded: bytes) -> np.ndarray:
  """Any PIL-readable image's bytes -> uint8 (H, W, 3) RGB: 16-bit scaled to 8 (PIL would
  clip), alpha dropped. PIL's errors pass through: UnidentifiedImageError for another kind of
  file, DecompressionBombError from the header of a huge one, OSError for truncated data."""
  with Image.open(io.BytesIO(encoded)) as img:
    img.load()
    if img.mode in _SIXTEEN_BIT:
      a = np.asarray(img, np.float64)
      img = Image.fromarray(np.clip(a / 257.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(img.convert("RGB"))  # CMYK, P, LA, RGBA, L: as torchvision's loader


def to_rgb_png(encoded: bytes) -> bytes:
  """Any PIL-readable image's bytes -> 8-bit RGB PNG bytes (decode_rgb's pixels)."""
  return storage.png_bytes(decode_rgb(encoded))


def check_root(root: str):
  """The folder's path, or a clear error if it is none (a run checks it before any work)."""
  top = storage.path(root)
  if not top.is_dir():
    raise UserInputError(f"image folder {root!r} does not exist or is not a directory")
  return top


@functools.lru_cache(maxsize=16)
def list_folder(root: str, max_per_class: int | None = None, seed: int = 0) -> FolderListing:
  """Class folders, their usable images (at most max_per_class each) and what was skipped."""
  top = check_root(root)
  class_names = tuple(sorted(d.name for d in top.iterdir()
                             if not d.name.startswith(".") and d.is_dir()))
  if not class_names:
    raise UserInputError(f"image folder {root!r} has no class sub-folders "
                         "(expected root/<class>/*)")
  paths, labels, convert, sizes, skipped, mask_files = [], [], [], [], [], set()
  for label, name in enumerate(class_names):
    folder = str(top / name)
    every = [str(d / f) for d, _, fs in storage.walk(folder) for f in fs]
    mask_files.update(f for f in every if f.lower().endswith(_SIDECARS))
    files = sorted(f for f in every if not f.lower().endswith(_SIDECARS))
    # the cap picks a seeded random subset, checking files until enough are usable
    order = np.random.default_rng([seed, label]).permutation(len(files)) if max_per_class \
        else range(len(files))
    kept = []
    for i in order:
      ok, conv, reason, size = check_image(files[i])
      if ok:
        kept.append((files[i], conv, size))
        if max_per_class and len(kept) == max_per_class:
          break
      else:
        skipped.append((files[i], reason))
    if not kept:
      raise UserInputError(f"class folder {folder!r} has no usable images "
                           f"({len(files)} files, all skipped)")
    kept.sort()
    paths += [p for p, _, _ in kept]
    convert += [c for _, c, _ in kept]
    sizes += [n for _, _, n in kept]
    labels += [label] * len(kept)
  if skipped:
    shown = "; ".join(f"{p} ({r})" for p, r in skipped[:5])
    logging.warning("image folder %s: skipped %d unusable files, e.g. %s", root, len(skipped),
                    shown)
  masks, ignores = (tuple(m if m in mask_files else None
                          for m in (mask_path(p, suffix) for p in paths))
                    for suffix in _SIDECARS)
  return FolderListing(root, class_names, tuple(paths), np.asarray(labels, np.int32),
                       np.asarray(convert, bool), tuple(skipped), masks=masks,
                       sizes=np.asarray(sizes, np.int64), ignores=ignores)


def mask_path(image_path: str, suffix: str = MASK_SUFFIX) -> str:
  """Where an image's mask lives: 'cat/001.jpg' -> 'cat/001.mask.png' (or the suffix's)."""
  return os.path.splitext(image_path)[0] + suffix


def mask_png(path: str, size: tuple[int, int]) -> bytes:
  """A mask file -> 1-channel PNG bytes in {0, 1} (non-zero = object), checked for size."""
  with Image.open(io.BytesIO(storage.path(path).read_bytes())) as img:
    if img.size != size:
      raise UserInputError(f"mask {path} is {img.size[0]}x{img.size[1]} but its image is "
                           f"{size[0]}x{size[1]}")
    values = np.asarray(img.convert("L")) > 0
  return storage.png_bytes(values.astype(np.uint8))


def folder_source(root: str, split: str, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  max_per_class: int | None = None, seed: int = 0) -> Source:
  """`split` of a stratified, seeded train/validation/test split of an image folder."""
  root = os.fspath(root)
  listing = list_folder(os.fspath(storage.absolute(root)), max_per_class, seed)
  positions = splits.stratified_split(listing.labels, fractions, seed)[splits.split_index(split)]
  if not len(positions):
    raise UserInputError(f"split {split!r} of image folder {root!r} is empty "
                         f"(fractions {tuple(fractions)}, {len(listing.paths)} images)")

  sidecars = {k: _split_sidecars(listing, files, positions)
              for k, files in (("object_mask", listing.masks), ("ignore_mask", listing.ignores))}
  present = [k for k, (has, _) in sidecars.items() if has]

  def load(pos: np.ndarray) -> dict[str, np.ndarray]:
    out = {k: np.empty(len(pos), object) for k in ["image"] + present}
    for j, i in enumerate(positions[np.asarray(pos)]):
      encoded = storage.path(listing.paths[i]).read_bytes()  # once: image and mask check
      out["image"][j] = to_rgb_png(encoded) if listing.convert[i] else encoded
      if present:
        with Image.open(io.BytesIO(encoded)) as img:  # the header alone: its size
          for key in present:
            files = listing.masks if key == "object_mask" else listing.ignores
            out[key][j] = mask_png(files[i], img.size)
    return out

  return Source(name=f"folder:{root}", split=split, class_names=listing.class_names,
                labels=listing.labels[positions], load=load,
                has_object_mask=sidecars["object_mask"][0],
                missing_masks=sidecars["object_mask"][1],
                has_ignore_mask=sidecars["ignore_mask"][0],
                missing_ignore_masks=sidecars["ignore_mask"][1], random_access=True,
                mean_encoded_bytes=float(listing.sizes[positions].mean()),
                files=None if present or listing.convert[positions].any()
                else tuple(listing.paths[i] for i in positions))


def _split_sidecars(listing: FolderListing, files: tuple[str | None, ...],
                    positions: np.ndarray) -> tuple[bool, tuple[str, ...]]:
  """(every image of the split has its mask file, the images that have none where some do)."""
  chosen = [files[i] if files else None for i in positions]
  if all(m is not None for m in chosen):
    return True, ()
  return False, tuple(listing.paths[i] for i, m in zip(positions, chosen) if m is None)

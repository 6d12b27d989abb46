"""A confounder for the shapes: a small class-colored patch in a corner (Decoy MNIST style).

Ross, Hughes & Doshi-Velez, "Right for the Right Reasons: Training Differentiable Models by
Constraining their Explanations", IJCAI 2017 (arXiv:1703.03717), section 4.1: in training
data a 4×4 patch in a random corner has a shade set by the class; at test time the shade is
random, so a model that learnt the patch instead of the object falls towards chance.

Here the patch's color is the class's color from `PALETTE` in train and validation, and a
random class's color in test; its corner is random in every split. It is drawn only on
pixels outside the object (dilated by one pixel), so the object mask stays the "right
reason". The patch is drawn from its own random stream on top of the finished image, so a
decoy dataset is its decoy-free twin (same seed) plus the patches, byte for byte elsewhere.
The painted pixels are the ignore mask (Ross et al.'s annotation A: what must not matter).
"""
import numpy as np

# Saturated, mutually distant colors, one per class (shapes_render.SHAPES has 8 classes).
PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255],
                    [0, 255, 255], [255, 255, 255], [0, 0, 0]], np.uint8)


def _dilate(masks: np.ndarray) -> np.ndarray:
  """(N, S, S) bool masks grown by one pixel (4-neighborhood)."""
  out = masks.copy()
  out[:, 1:] |= masks[:, :-1]
  out[:, :-1] |= masks[:, 1:]
  out[:, :, 1:] |= masks[:, :, :-1]
  out[:, :, :-1] |= masks[:, :, 1:]
  return out


def corner_boxes(image_size: int, side: int) -> list[tuple[slice, slice]]:
  """The four corner squares of `side` pixels: top-left, top-right, bottom-left, bottom-right."""
  near, far = slice(0, side), slice(image_size - side, image_size)
  return [(near, near), (near, far), (far, near), (far, far)]


def add_decoys(seed: np.random.SeedSequence, images: np.ndarray, masks: np.ndarray,
               labels: np.ndarray, side: int, class_colored: bool) -> np.ndarray:
  """images (N, S, S, 3) uint8 with a `side`-pixel patch in a corner; a new array (see
  place_decoys)."""
  return place_decoys(seed, images, masks, labels, side, class_colored)[0]


def place_decoys(seed: np.random.SeedSequence, images: np.ndarray, masks: np.ndarray,
                 labels: np.ndarray, side: int, class_colored: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(images (N, S, S, 3) uint8 with a `side`-pixel patch in a corner, a new array; the
  patches' masks (N, S, S) uint8, 1 on the painted pixels).

  class_colored: color = PALETTE[label] (train, validation), else PALETTE[a random class]
  (test). The corner is drawn among those the object does not touch (if the object touches
  all four, the freest one; object pixels are never painted).
  """
  size = images.shape[1]
  num_classes = int(labels.max()) + 1 if len(labels) else 1
  if not 1 <= side <= size // 4:
    raise ValueError(f"decoy side must be in 1..{size // 4} pixels for {size}-pixel images; "
                     f"got {side}")
  if num_classes > len(PALETTE):
    raise ValueError(f"decoys have {len(PALETTE)} colors; got {num_classes} classes")
  rng = np.random.default_rng(seed)
  n = len(labels)
  color_of = labels if class_colored else rng.integers(0, num_classes, n)
  keep_out = _dilate(masks.astype(bool))
  boxes = corner_boxes(size, side)
  overlap = np.stack([keep_out[:, r, c].sum(axis=(1, 2)) for r, c in boxes], 1)  # (N, 4)
  # uniform among the corners of least overlap (almost always: the untouched ones)
  score = np.where(overlap == overlap.min(1, keepdims=True), rng.uniform(size=(n, 4)), -1.0)
  corner = np.argmax(score, axis=1)
  out = images.copy()
  painted = np.zeros(masks.shape, np.uint8)
  for k, (rows, cols) in enumerate(boxes):
    chosen = np.flatnonzero(corner == k)
    region = out[chosen, rows, cols]  # (m, side, side, 3), a copy
    paint = ~keep_out[chosen, rows, cols]
    region[paint] = np.repeat(PALETTE[color_of[chosen]], side * side, axis=0).reshape(
        len(chosen), side, side, 3)[paint]
    out[chosen, rows, cols] = region
    painted[chosen, rows, cols] = paint
  return out, painted

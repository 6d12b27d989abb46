"""The data section: class distribution per split, a labeled sample grid, augmentations."""
from etils import epath
from typing import Sequence

import numpy as np

from cnnviz_jax.report import display


def class_distribution(stats: dict, directory: epath.Path | None = None) -> display.Figure:
  """Bars of examples per class, one color per split."""
  names = stats["class_names"]
  splits = list(stats["splits"])
  n = len(names)
  fig = display.Figure(figsize=(min(max(4.5, 0.55 * n * max(len(splits), 1) / 2 + 2), 16), 3.6),
                       layout="constrained")
  ax = fig.subplots()
  width = 0.8 / max(len(splits), 1)
  x = np.arange(n)
  for i, split in enumerate(splits):
    counts = [stats["splits"][split]["per_class"][c] for c in names]
    bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts, width,
                  label=f"{split} ({stats['splits'][split]['num_examples']:,})",
                  color=display.SEQUENTIAL_COLORS[i % 10])
    if n <= 12:  # numbers on the bars only where they stay readable
      ax.bar_label(bars, fontsize=7, padding=1)
  step = max(1, n // 40)
  ax.set_xticks(x[::step], [display.short(c) for c in names[::step]],
                rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
  ax.set_ylabel("examples")
  ax.set_title(f"{stats['name']}: examples per class and split")
  ax.margins(y=0.12)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a bar
  totals = {s: stats["splits"][s]["num_examples"] for s in splits}
  caption = (f"{n} classes; " + ", ".join(f"{s} {t:,}" for s, t in totals.items()) +
             ". Unequal bars mean class imbalance: read accuracy together with per-class recall.")
  return display.save(fig, directory, "class_distribution", "Class distribution", caption)


def sample_grid(images: np.ndarray, labels: Sequence[int], class_names: Sequence[str],
                directory: epath.Path | None = None, split: str = "train") -> display.Figure:
  """Images (N, H, W, 3) in [0, 1] with their class names, 8 per row."""
  n = len(images)
  cols = min(8, n)
  panels = display.Panels(-(-n // cols), cols)
  for i, (image, label) in enumerate(zip(images, labels)):
    panels.show(i // cols, i % cols, image, display.short(class_names[int(label)]))
  panels.suptitle(f"{split} samples with their labels")
  return display.save(panels, directory, "samples", "Samples",
                      f"{n} {split} images as the model sees them (after resizing), with labels.")


def augmented_grid(originals: np.ndarray, augmented: np.ndarray, description: str,
                   directory: epath.Path | None = None) -> display.Figure:
  """Row i: original i, then its augmented versions. originals (R, H, W, 3), augmented
  (R, K, H, W, 3), both in [0, 1]."""
  rows, k = augmented.shape[:2]
  panels = display.Panels(rows, k + 1)
  for r in range(rows):
    panels.show(r, 0, originals[r], "original" if r == 0 else None)
    for j in range(k):
      panels.show(r, j + 1, augmented[r, j], f"augmented {j + 1}" if r == 0 else None)
  panels.suptitle("training augmentation")
  return display.save(panels, directory, "augmented_samples", "Augmented samples",
                      f"Each row: one training image and {k} random draws of {description}.")

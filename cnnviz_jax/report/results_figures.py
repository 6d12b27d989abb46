"""The results section: confusion matrices, per-class accuracy, the most confident mistakes."""
from etils import epath
from typing import Sequence

import numpy as np

from cnnviz_jax.data import splits as data_splits
from cnnviz_jax.report import display

_ANNOTATE_UP_TO = 20  # classes: beyond that, cell numbers are unreadable


def _matrix(ax, fig, values: np.ndarray, names: Sequence[str], title: str, fmt: str,
            vmax: float | None, label: str) -> None:
  n = len(names)
  image = ax.imshow(values, cmap=display.MATRIX, vmin=0, vmax=vmax)
  fig.colorbar(image, ax=ax, shrink=0.8, label=label)
  ticks = np.arange(n) if n <= 40 else np.arange(0, n, max(1, n // 40))
  ax.set_xticks(ticks, [display.short(names[i]) for i in ticks], rotation=45, ha="right",
                fontsize=7)
  ax.set_yticks(ticks, [display.short(names[i]) for i in ticks], fontsize=7)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(title, fontsize=9)
  if n <= _ANNOTATE_UP_TO:
    top = vmax if vmax else max(values.max(), 1)
    for (i, j), v in np.ndenumerate(values):
      ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7 if n <= 10 else 5,
              color="black" if v > 0.6 * top else "white")


def confusion_matrices(results: dict, directory: epath.Path | None = None,
                       split: str = "test") -> display.Figure:
  """Counts and row-normalized (recall) confusion matrices of one split of results.json."""
  names = results["class_names"]
  counts = np.asarray(results["splits"][split]["confusion_matrix"], np.int64)
  rows = counts.sum(1, keepdims=True)
  normalized = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
  n = len(names)
  side = min(max(3.6, 0.42 * n + 1.8), 14)
  fig = display.Figure(figsize=(2 * side + 1, side), layout="constrained")
  axes = fig.subplots(1, 2)
  _matrix(axes[0], fig, counts, names, f"{split}: counts", "{:d}", None, "images")
  _matrix(axes[1], fig, normalized, names, f"{split}: normalized by true class", "{:.2f}", 1.0,
          "fraction of the true class")
  accuracy = results["splits"][split]["accuracy"]
  fig.suptitle(f"confusion matrix, {split} split (accuracy {accuracy:.2%})", fontsize=10)
  off = counts.copy()
  np.fill_diagonal(off, 0)
  caption = f"{int(counts.sum()):,} {split} images, {int(off.sum()):,} misclassified."
  if off.sum():
    i, j = np.unravel_index(np.argmax(off), off.shape)
    caption += f" Most frequent confusion: {names[i]} taken for {names[j]} ({off[i, j]}×)."
  return display.save(fig, directory, f"confusion_{split}", f"Confusion matrix ({split})",
                      caption)


def per_class_accuracy(results: dict,
                       directory: epath.Path | None = None) -> display.Figure:
  """Per-class accuracy (recall) on every evaluated split, as horizontal bars."""
  names = results["class_names"]
  splits = [s for s in data_splits.SPLIT_NAMES if s in results["splits"]]
  n = len(names)
  fig = display.Figure(figsize=(6.5, min(max(2.5, 0.32 * n * max(len(splits), 1) / 1.5 + 1.2),
                                          30)), layout="constrained")
  ax = fig.subplots()
  height = 0.8 / max(len(splits), 1)
  y = np.arange(n)
  for i, split in enumerate(splits):
    recall = [results["splits"][split]["per_class"][c]["recall"] for c in names]
    bars = ax.barh(y + (i - (len(splits) - 1) / 2) * height, recall, height,
                   label=f"{split} ({results['splits'][split]['accuracy']:.1%} overall)",
                   color=display.SEQUENTIAL_COLORS[i])
    if n <= 12:
      ax.bar_label(bars, labels=[f"{r:.1%}" for r in recall], fontsize=6, padding=2)
  ax.set_yticks(y, [display.short(c, 18) for c in names], fontsize=7 if n <= 30 else 5)
  ax.invert_yaxis()
  ax.set_xlim(0, 1.12)
  ax.set_xlabel("accuracy within the class (recall)")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a bar
  ax.set_title("accuracy per class and split", fontsize=10)
  ax.grid(axis="x", alpha=0.3)
  test = results["splits"].get("test") or results["splits"][splits[-1]]
  worst = min(names, key=lambda c: test["per_class"][c]["recall"])
  caption = (f"Weakest class: {worst} ({test['per_class'][worst]['recall']:.1%} recall). "
             "Precision, recall and F1 per class are in results.json.")
  return display.save(fig, directory, "per_class_accuracy", "Per-class accuracy", caption)


def confidently_wrong(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                      class_names: Sequence[str], directory: epath.Path | None = None,
                      k: int = 8) -> display.Figure | None:
  """The k misclassified images with the highest predicted probability (None if none)."""
  predicted = probabilities.argmax(-1)
  wrong = np.flatnonzero(predicted != labels)
  if not len(wrong):
    return None
  order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:k]
  cols = min(4, len(order))
  panels = display.Panels(-(-len(order) // cols), cols, cell=2.0, title_lines=2)
  for slot, i in enumerate(order):
    panels.show(slot // cols, slot % cols, images[i],
                f"true: {display.short(class_names[labels[i]])}\n"
                f"pred: {display.short(class_names[predicted[i]])} "
                f"({probabilities[i, predicted[i]]:.0%})", color="firebrick")
  panels.suptitle("most confidently wrong test images")
  caption = (f"{len(wrong)} of {len(labels)} test images are misclassified; these are the "
             f"{len(order)} the model was most sure about. Label noise or a shortcut shows up "
             "here first.")
  return display.save(panels, directory, "confidently_wrong", "Most confidently wrong", caption)

"""The training section: loss, accuracy and learning rate per epoch, stages marked."""
from etils import epath

import numpy as np

from cnnviz_jax.report import display


def _stage_starts(history: list[dict]) -> list[tuple[float, int]]:
  """(x position between epochs, stage) where a new stage begins."""
  return [(i + 0.5, h["stage"]) for i, h in enumerate(history[1:], start=1)
          if h["stage"] != history[i - 1]["stage"]]


def training_curves(history: list[dict], directory: epath.Path | None = None,
                    planned_epochs: int | None = None) -> display.Figure:
  """Three panels over epochs: loss and accuracy (train vs validation), learning rate.

  The x axis counts epochs over all stages; dashed lines mark stage boundaries and a dot
  the best validation accuracy (the checkpoint the results use).
  """
  epochs = np.arange(1, len(history) + 1)
  fig = display.Figure(figsize=(12, 3.4), layout="constrained")
  axes = fig.subplots(1, 3)
  for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
    ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", ms=3, label=f"train {label}",
            color=display.SEQUENTIAL_COLORS[0])
    ax.plot(epochs, [h[f"val_{key}"] for h in history], "s-", ms=3,
            label=f"validation {label}", color=display.SEQUENTIAL_COLORS[1])
    ax.set_ylabel(label)
  val_acc = np.asarray([h["val_accuracy"] for h in history])
  best = int(np.argmax(val_acc))
  axes[1].plot(epochs[best], val_acc[best], "*", ms=12, color=display.SEQUENTIAL_COLORS[3],
               label=f"best val {val_acc[best]:.2%} (epoch {best + 1})")
  axes[2].plot(epochs, [h["lr"] for h in history], "o-", ms=3, color=display.SEQUENTIAL_COLORS[2],
               label="learning rate (end of epoch)")
  axes[2].set_ylabel("learning rate")
  lrs = np.asarray([h["lr"] for h in history])
  if np.all(lrs > 0) and lrs.max() / lrs.min() > 50:  # cyclic / decayed schedules span decades
    axes[2].set_yscale("log")
  for ax in axes:
    for x, stage in _stage_starts(history):
      ax.axvline(x, ls="--", lw=1, color="0.4")
      ax.annotate(f"stage {stage}", (x, 1.0), xycoords=("data", "axes fraction"),
                  xytext=(3, -12), textcoords="offset points", fontsize=7, color="0.3")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if planned_epochs:
      ax.set_xlim(0.5, max(planned_epochs, len(history)) + 0.5)
  title = "training curves"
  if planned_epochs and len(history) < planned_epochs:
    title += f" (partial: {len(history)} of {planned_epochs} epochs)"
  fig.suptitle(title, fontsize=10)
  stages = len({h["stage"] for h in history})
  caption = (f"{len(history)} epochs in {stages} stage{'s' if stages > 1 else ''}; "
             f"best validation accuracy {val_acc[best]:.2%} at epoch {best + 1}. "
             "A widening gap between train and validation loss is overfitting.")
  return display.save(fig, directory, "training_curves", "Training curves", caption)

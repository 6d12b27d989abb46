"""Is the explanation faithful? Deletion/insertion curves, the pointing game and the
model-randomization sanity check, drawn."""
from etils import epath
from typing import Sequence

import numpy as np

from cnnviz_jax.report import display

_STYLE = {"Grad-CAM": ("-", 0), "guided backprop": ("--", 1), "random": (":", 7),
          "center": (":", 7)}


def _style(name: str) -> dict:
  line, color = _STYLE.get(name, ("-", 2))
  return {"ls": line, "color": display.SEQUENTIAL_COLORS[color], "lw": 2}


def deletion_insertion(curves: dict[str, tuple[np.ndarray, np.ndarray]],
                       directory: epath.Path | None = None) -> display.Figure:
  """curves {method: (deletion (B, S+1), insertion (B, S+1))}: mean target probability as
  the most salient pixels are removed (left) or revealed on a blurred image (right)."""
  fig = display.Figure(figsize=(10, 3.6), layout="constrained")
  axes = fig.subplots(1, 2)
  for name, (deletion, insertion) in curves.items():
    steps = deletion.shape[-1] - 1
    fraction = np.arange(steps + 1) / steps
    for ax, curve in ((axes[0], deletion), (axes[1], insertion)):
      mean = curve.mean(0)
      area = float(np.mean((curve[:, 1:] + curve[:, :-1]).sum(-1) / (2 * steps)))
      ax.plot(fraction, mean, label=f"{name} (AUC {area:.3f})", **_style(name))
  axes[0].set_title("deletion: most salient pixels removed first (lower AUC is better)",
                    fontsize=9)
  axes[1].set_title("insertion: most salient pixels revealed first (higher AUC is better)",
                    fontsize=9)
  for ax in axes:
    ax.set_xlabel("fraction of pixels changed")
    ax.set_ylabel("probability of the explained class")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  b = next(iter(curves.values()))[0].shape[0]
  return display.save(fig, directory, "deletion_insertion", "Deletion and insertion",
                      f"Petsiuk et al. 2018, mean over {b} test images: a faithful map makes "
                      "the class probability fall fast when its top pixels are deleted and "
                      "rise fast when they are inserted. 'random' ranks pixels at random.")


def pointing_game(images: np.ndarray, masks: np.ndarray, cams: np.ndarray,
                  peaks: dict[str, np.ndarray], hits: dict[str, np.ndarray], tolerance: float,
                  directory: epath.Path | None = None, shown: int = 8) -> display.Figure:
  """Examples: Grad-CAM over the image, the object's outline, each method's peak (circle:
  Grad-CAM, cross: guided backprop); the title says hit or miss for Grad-CAM."""
  n = min(shown, len(images))
  cols = min(8, n)
  panels = display.Panels(-(-n // cols), cols, cell=1.6, fontsize=7)
  markers = {"Grad-CAM": ("o", "#00e5ff"), "guided backprop": ("x", "#ffffff")}
  for i in range(n):
    r, c = i // cols, i % cols
    picture = display.outline_mask(display.overlay(images[i], display.unit(cams[i])), masks[i])
    hit = bool(hits["Grad-CAM"][i])
    panels.show(r, c, picture, "hit" if hit else "miss",
                color="darkgreen" if hit else "firebrick")
    for name, (marker, color) in markers.items():
      if name in peaks:
        panels.mark(r, c, images[i].shape, peaks[name][i], color, marker)
  scores = ", ".join(f"{k} {np.mean(v):.0%}" for k, v in hits.items())
  panels.suptitle(f"pointing game over {len(hits['Grad-CAM'])} test images: {scores}")
  return display.save(panels, directory, "pointing_game", "Pointing game",
                      f"Zhang et al. 2018: a hit when a map's maximum lies within {tolerance:.1f} "
                      f"px of the object (outlined; the synthetic shapes come with masks). "
                      f"Hit rates: {scores}. 'center' always points at the image center: a map "
                      "must beat it to show it localizes.")


def randomization_curves(layers: Sequence[str], spearman: dict[str, np.ndarray],
                         directory: epath.Path | None = None) -> display.Figure:
  """spearman {method: (L, B)}: rank correlation with the trained model's map as layers are
  re-initialized from the top (cascading)."""
  fig = display.Figure(figsize=(max(5.0, 0.55 * len(layers) + 2.5), 3.6), layout="constrained")
  ax = fig.subplots()
  x = np.arange(len(layers) + 1)
  for name, rho in spearman.items():
    mean = np.concatenate([[1.0], rho.mean(1)])
    ax.plot(x, mean, marker="o", ms=4, label=name, **_style(name))
  ax.set_xticks(x, ["trained"] + [f"+{display.short(n, 12)}" for n in layers], rotation=45,
                ha="right", fontsize=7)
  ax.axhline(0, color="0.5", lw=0.8)
  ax.set_ylim(-0.3, 1.05)
  ax.set_ylabel("Spearman ρ with the trained map")
  ax.set_xlabel("layers re-initialized, cumulatively from the output")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  ax.set_title("model-randomization sanity check (cascading)", fontsize=9)
  return display.save(fig, directory, "randomization_check", "Randomization sanity check",
                      "Adebayo et al. 2018: maps of a method that explains the model should "
                      "decorrelate as its weights are destroyed; a curve that stays high "
                      "means the map reflects the image, not what the network learned.")


def randomization_maps(image: np.ndarray, layers: Sequence[str], originals: dict[str, np.ndarray],
                       maps: dict[str, np.ndarray],
                       directory: epath.Path | None = None) -> display.Figure:
  """One image: each method's map for the trained model, then after each cascading step.
  originals {method: map (h, w) or (H, W, 3)}, maps {method: (L, ...)}."""
  panels = display.Panels(len(maps), len(layers) + 2, cell=1.25, fontsize=7)
  for r, (name, stack) in enumerate(maps.items()):
    panels.side(r, name)
    panels.show(r, 0, image, "image" if r == 0 else None)
    for j, m in enumerate([originals[name]] + list(stack)):
      heat = display.magnitude(m) if m.ndim == 3 else display.unit(m)
      title = ("trained" if j == 0 else f"+{display.short(layers[j - 1], 13)}") if r == 0 else None
      panels.show(r, j + 1, display.overlay(image, heat, alpha=0.7), title)
  panels.colorbar("relevance (min-max)")
  panels.suptitle("maps as layers are re-initialized from the output down")
  return display.save(panels, directory, "randomization_maps", "Maps of randomized models",
                      "Left to right: the trained model, then more and more layers replaced "
                      "by a fresh initialization (LeCun-normal kernels, zero biases, reset "
                      "BatchNorm).")

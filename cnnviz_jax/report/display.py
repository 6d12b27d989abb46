"""Model inputs and maps as pictures, and figures as files.

Everything a figure module needs to turn arrays into pixels: undo the input
normalization, color a heatmap with a perceptually uniform colormap, blend it over the
image, scale signed attributions, and name a figure for the report (`save`: a PNG only
when given a directory, nothing clipped).

Figures are `Figure`s, matplotlib Figures made without pyplot: a notebook shows the one a
cell returns inline (as PNG, whatever matplotlib's backend), none is shown twice or kept
open by pyplot, and we never choose the user's backend (a forced Agg would silence their
own plots in a notebook).
"""
import io
from typing import Sequence

import matplotlib
from matplotlib import cm as mcm
from matplotlib import colors as mcolors
from matplotlib import figure as mfigure
from matplotlib import patches as mpatches
import numpy as np
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.explain import maps as maps_lib
from cnnviz_jax.weights import preprocessing

HEAT = "inferno"  # heatmaps and overlays: perceptually uniform, dark = 0
MATRIX = "viridis"  # confusion matrices, curves of many lines
FEATURES = "viridis"  # feature maps
SEQUENTIAL_COLORS = matplotlib.colormaps["tab10"].colors
DPI = 110
# PNGs as the report and a notebook show them: tight bounding box, so no label is cut off
SAVEFIG = dict(dpi=DPI, bbox_inches="tight", pad_inches=0.08, facecolor="white")


class Figure(mfigure.Figure):
  """A matplotlib Figure with what the report says about it (`save` sets them): its file stem
  `name` (unique within a report), `title`, `caption` and `path`, where it was written (None
  until then; a GIF for the animated figure). A notebook shows it inline, as PNG, whatever
  matplotlib's backend."""
  name: str = ""
  title: str = ""
  caption: str = ""
  path: epath.Path | None = None

  @property
  def axes_texts(self) -> list[str]:
    """The texts drawn on its axes (annotations, titles of Panels' cells): content checks."""
    return [t.get_text() for ax in self.axes for t in ax.texts]

  def _repr_png_(self) -> bytes:  # IPython's display protocol (Jupyter, myst-nb)
    buffer = io.BytesIO()
    self.savefig(buffer, format="png", **SAVEFIG)
    return buffer.getvalue()


def to_display(x: np.ndarray, normalization: str = "unit", mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
  """Model inputs (..., H, W, 3) -> RGB in [0, 1], undoing the data pipeline's normalization."""
  rgb = preprocessing.denormalize(np.asarray(x, np.float32), normalization, mean, std)
  return np.clip(rgb / 255.0, 0.0, 1.0)


def unit(maps: np.ndarray, axes: Sequence[int] = (-2, -1)) -> np.ndarray:
  """Min-max to [0, 1] over `axes` (no epsilon: the largest value is 1); a constant map
  becomes 0 (never NaN)."""
  return np.asarray(maps_lib.normalize(np.asarray(maps, np.float32), eps=0.0, axes=axes))


def resize(maps: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Bilinear resize of (..., h, w) maps to size = (H, W) (half-pixel centers, as cv2)."""
  maps = np.asarray(maps, np.float32)
  if maps.shape[-2:] == tuple(size):
    return maps
  return np.asarray(maps_lib.upsample(maps, tuple(size)))


def color(heat: np.ndarray, cmap: str = HEAT) -> np.ndarray:
  """(H, W) values in [0, 1] -> (H, W, 3) RGB."""
  return matplotlib.colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3].astype(np.float32)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5,
            cmap: str = HEAT) -> np.ndarray:
  """Heatmap (h, w) in [0, 1], resized to the image (H, W, 3) in [0, 1], blended over it."""
  heat = resize(heat, image.shape[:2])
  return np.clip((1 - alpha) * image + alpha * color(heat, cmap), 0.0, 1.0)


def signed_image(attribution: np.ndarray, percentile: float = 99.5) -> np.ndarray:
  """(..., H, W, 3) gradients -> [0, 1] with 0 at grey, scaled by a high percentile of |g|
  per image, so one extreme pixel does not wash the picture out."""
  a = np.asarray(attribution, np.float32)
  axes = tuple(range(a.ndim - 3, a.ndim))
  scale = np.percentile(np.abs(a), percentile, axis=axes, keepdims=True)
  return np.clip(0.5 + 0.5 * a / np.where(scale > 0, scale, 1.0), 0.0, 1.0)


def magnitude(attribution: np.ndarray, percentile: float = 99.5) -> np.ndarray:
  """(..., H, W, 3) attributions -> (..., H, W) |a| summed over channels, in [0, 1]."""
  m = np.asarray(maps_lib.attribution_map(np.asarray(attribution, np.float32)))
  scale = np.percentile(m, percentile, axis=(-2, -1), keepdims=True)
  return np.clip(m / np.where(scale > 0, scale, 1.0), 0.0, 1.0)


def outline_mask(image: np.ndarray, mask: np.ndarray, color=(0.0, 0.9, 1.0)) -> np.ndarray:
  """The image with the boundary pixels of a binary (H, W) mask painted in `color`."""
  m = np.asarray(mask) > 0
  inner = m.copy()
  inner[1:] &= m[:-1]
  inner[:-1] &= m[1:]
  inner[:, 1:] &= m[:, :-1]
  inner[:, :-1] &= m[:, 1:]
  out = np.array(image, np.float32, copy=True)
  out[m & ~inner] = color
  return out


def to_uint8(image: np.ndarray) -> np.ndarray:
  return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


class Panels:
  """A rows x cols grid of pictures drawn into ONE matplotlib Axes.

  Much faster than an Axes per picture (axes creation and layout dominate the cost of
  image grids); titles and labels are plain text, outlines are patches, all in cell
  coordinates: cell (r, c) spans x in [c*(1+gap), +1], y in [top(r), +1] (y down).
  """

  def __init__(self, rows: int, cols: int, cell: float = 1.6, title_lines: int = 1,
               label_lines: int = 0, fontsize: float = 8, gap: float = 0.08):
    self.rows, self.cols, self.fontsize, self.gap = rows, cols, fontsize, gap
    line = fontsize * 1.35 / 72 / cell  # one text line, in cells
    self.head, self.foot = title_lines * line + 0.04, label_lines * line + (0.04 if label_lines
                                                                              else 0.0)
    self.pitch_y = 1 + self.head + self.foot + gap
    width, height = cols * (1 + gap), rows * self.pitch_y
    self.fig = Figure(figsize=(width * cell, height * cell))
    self.ax = self.fig.add_axes((0, 0, 1, 1))
    self.ax.set_xlim(-gap / 2, width - gap / 2)
    self.ax.set_ylim(height, 0)
    self.ax.set_aspect("equal")
    self.ax.set_axis_off()

  def box(self, r: int, c: int) -> tuple[float, float]:
    """(x0, y0) of cell (r, c)'s picture area."""
    return c * (1 + self.gap), r * self.pitch_y + self.head

  def show(self, r: int, c: int, image: np.ndarray, title: str | None = None,
           label: str | None = None, color: str = "black", **imshow) -> None:
    """Draws image (H, W[, 3]) fitted into cell (r, c), keeping its aspect ratio."""
    x0, y0 = self.box(r, c)
    h, w = image.shape[:2]
    sx, sy = (1.0, h / w) if w >= h else (w / h, 1.0)
    ox, oy = x0 + (1 - sx) / 2, y0 + (1 - sy) / 2
    imshow.setdefault("interpolation", "nearest" if max(h, w) < 64 else "antialiased")
    self.ax.imshow(image, extent=(ox, ox + sx, oy + sy, oy), **imshow)
    self.ax.add_patch(mpatches.Rectangle((ox, oy), sx, sy, fill=False, lw=0.5, ec="0.6"))
    if title:
      self.ax.text(x0 + 0.5, y0 - 0.02, title, ha="center", va="bottom",
                   fontsize=self.fontsize, color=color)
    if label:
      self.ax.text(x0 + 0.5, y0 + 1.02, label, ha="center", va="top",
                   fontsize=self.fontsize - 1, color=color)

  def side(self, r: int, text: str) -> None:
    """A label left of row r (rotated), like an axis y-label."""
    x0, y0 = self.box(r, 0)
    self.ax.text(x0 - 0.04, y0 + 0.5, text, ha="right", va="center", rotation=90,
                 fontsize=self.fontsize)

  def outline(self, r: int, c: int, image_shape, rows: tuple[int, int], cols: tuple[int, int],
              color: str = "#00e5ff") -> None:
    """Outlines pixel rows [r0, r1) x cols [c0, c1) of the picture in cell (r, c), clipped."""
    h, w = image_shape[:2]
    x0, y0 = self.box(r, c)
    scale = 1.0 / max(h, w)
    ox, oy = x0 + (1 - w * scale) / 2, y0 + (1 - h * scale) / 2
    (a, b), (d, e) = (np.clip(rows, 0, h), np.clip(cols, 0, w))
    self.ax.add_patch(mpatches.Rectangle((ox + d * scale, oy + a * scale), (e - d) * scale,
                                         (b - a) * scale, fill=False, lw=1.6, ec=color))

  def mark(self, r: int, c: int, image_shape, point, color: str, marker: str = "o",
           label: str | None = None) -> None:
    """A marker on pixel (row, col) of the picture in cell (r, c)."""
    h, w = image_shape[:2]
    x0, y0 = self.box(r, c)
    scale = 1.0 / max(h, w)
    ox, oy = x0 + (1 - w * scale) / 2, y0 + (1 - h * scale) / 2
    self.ax.plot(ox + (point[1] + 0.5) * scale, oy + (point[0] + 0.5) * scale, marker,
                 ms=7, mfc="none", mec=color, mew=2, label=label)

  def suptitle(self, text: str) -> None:
    self.ax.text(self.cols * (1 + self.gap) / 2 - self.gap / 2, -0.06, text, ha="center",
                 va="bottom", fontsize=self.fontsize + 2)

  def colorbar(self, label: str, cmap: str = HEAT) -> None:
    """A 0..1 colorbar to the right of the grid."""
    cax = self.fig.add_axes((1.02, 0.15, 0.018 * 8 / max(self.cols, 4), 0.7))
    mappable = mcm.ScalarMappable(norm=mcolors.Normalize(0, 1), cmap=cmap)
    self.fig.colorbar(mappable, cax=cax, label=label)

  def blank(self, r: int, c: int, text: str) -> None:
    x0, y0 = self.box(r, c)
    self.ax.text(x0 + 0.5, y0 + 0.5, text, ha="center", va="center", fontsize=self.fontsize,
                 color="0.4")


def save(fig, directory: epath.Path | None, name: str, title: str, caption: str = "") -> Figure:
  """Names `fig` (a Figure or Panels) for the report and returns the Figure; with a
  directory, also writes directory/name.png (a local folder or a URL) and sets its path."""
  fig = getattr(fig, "fig", fig)
  fig.name, fig.title, fig.caption = name, title, caption
  if directory is not None:
    directory = storage.path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fig.path = storage.write_figure(fig, directory / f"{name}.png", **SAVEFIG)
  return fig


def short(value, width: int = 14) -> str:
  """`value` as text cut to `width` characters with an ellipsis: a class name on a tick
  label (ImageNet names can be long), a sweep's parameter value in a table cell."""
  text = str(value)
  return text if len(text) <= width else text[:width - 1] + "…"

"""Inside the network: feature maps, first-layer filters, receptive fields, max-activating
patches and activation-maximization images."""
from etils import epath
from typing import Sequence

import numpy as np
from cnnviz_jax.report import display

_MAPS_PER_LAYER = 16


def feature_maps(image: np.ndarray, maps: dict[str, np.ndarray],
                 directory: epath.Path | None = None) -> display.Figure:
  """For one image, the most active channels of each layer: maps {layer: (h, w, C)}."""
  cols = 8
  blocks = [(name, a, np.argsort(-a.mean((0, 1)), kind="stable")[:_MAPS_PER_LAYER])
            for name, a in maps.items()]
  rows = sum(-(-len(order) // cols) for _, _, order in blocks)
  panels = display.Panels(rows, cols + 1, cell=1.1, fontsize=7)
  r = 0
  for name, a, order in blocks:
    panels.show(r, 0, image, name)
    x0, y0 = panels.box(r, 0)
    panels.ax.text(x0 + 0.5, y0 + 1.04, f"{a.shape[0]}×{a.shape[1]}×{a.shape[2]}",
                   ha="center", va="top", fontsize=6)
    for j, channel in enumerate(order):
      panels.show(r + j // cols, 1 + j % cols, display.unit(a[..., channel], axes=(0, 1)),
                  f"ch {channel}", cmap=display.FEATURES, vmin=0, vmax=1,
                  interpolation="nearest")
    r += -(-len(order) // cols)
  panels.colorbar("activation (min-max per map)", display.FEATURES)
  panels.suptitle(f"feature maps: the {_MAPS_PER_LAYER} most active channels per layer")
  return display.save(panels, directory, "feature_maps", "Feature maps",
                      "Seeds 001/004: early layers respond to edges and colors at full "
                      "resolution, later ones to parts of shapes on coarser grids. Channels "
                      "are sorted by mean activation on this image.")


def first_layer_filters(kernels: np.ndarray, layer: str,
                        directory: epath.Path | None = None) -> display.Figure:
  """Kernels (out, kh, kw, in) in [0, 1] as small images (RGB where in == 3)."""
  n = len(kernels)
  cols = min(16, n)
  panels = display.Panels(-(-n // cols), cols, cell=0.8, fontsize=6)
  for i, k in enumerate(kernels):
    panels.show(i // cols, i % cols, k if k.shape[-1] == 3 else k[..., 0], str(i),
                cmap=None if k.shape[-1] == 3 else "gray", vmin=0, vmax=1,
                interpolation="nearest")
  kh, kw = kernels.shape[1:3]
  panels.suptitle(f"{layer}: {n} filters of {kh}×{kw}")
  return display.save(panels, directory, "filters", "First-layer filters",
                      "Seed 000: the first convolution's kernels, each min-max scaled, shown "
                      "as color patches (oriented edges and color blobs are typical).")


def receptive_field_outlines(images: np.ndarray, acts: np.ndarray, field, layer: str,
                             directory: epath.Path | None = None) -> display.Figure:
  """Per image: the receptive field of `layer`'s most active unit, outlined (Zeiler & Fergus 2014).

  acts: (B, h, w, C) of `layer`; field: its ReceptiveField.
  """
  b = len(images)
  cols = min(8, b)
  panels = display.Panels(-(-b // cols), cols, cell=1.6, fontsize=7)
  for i, (image, a) in enumerate(zip(images, acts)):
    row, col, channel = np.unravel_index(np.argmax(a), a.shape)
    panels.show(i // cols, i % cols, image, f"ch {channel} at ({row}, {col})")
    panels.outline(i // cols, i % cols, image.shape, *field.region((row, col)))
  size, stride = field.size, field.stride
  panels.suptitle(f"receptive field of the most active unit of {layer} "
                  f"({size[0]}×{size[1]} px, stride {stride[0]})")
  return display.save(panels, directory, "receptive_fields", "Receptive fields",
                      "Seed 004: the input region that the maximally firing unit of the last "
                      "layer can see (clipped to the image; the rest is padding).")


def max_activating_patches(patches: np.ndarray, inside: np.ndarray, activations: np.ndarray,
                           channels: Sequence[int], layer: str,
                           directory: epath.Path | None = None) -> display.Figure:
  """Rows: channels of `layer`; columns: the dataset patches that excite it most.

  patches (C, k, Rh, Rw, 3) in [0, 1]; inside (C, k, Rh, Rw): False on padding (shown grey).
  """
  c, k = patches.shape[:2]
  panels = display.Panels(c, k, cell=1.0, title_lines=0, label_lines=1, fontsize=7)
  for i in range(c):
    panels.side(i, f"ch {channels[i]}")
    for j in range(k):
      shown = np.where(inside[i, j][..., None], patches[i, j], 0.5)
      panels.show(i, j, shown, label=f"{activations[i, j]:.2g}")
  panels.suptitle(f"{layer}: top-{k} test patches per channel (activation below)")
  return display.save(panels, directory, "max_activating_patches", "Max-activating patches",
                      "The receptive-field crops of the test images where each channel fires "
                      "most (Zeiler & Fergus); grey is outside the image.")


def activation_maximization(images: np.ndarray, channels: Sequence[int], objective: np.ndarray,
                            layer: str,
                            directory: epath.Path | None = None) -> display.Figure:
  """Optimized inputs (N, H, W, 3) in [0, 1], one per channel of `layer`."""
  n = len(images)
  cols = min(8, n)
  panels = display.Panels(-(-n // cols), cols, cell=1.4, label_lines=1, fontsize=7)
  for i, (image, channel, value) in enumerate(zip(images, channels, objective)):
    panels.show(i // cols, i % cols, image, f"ch {channel}", f"act {value:.2g}")
  panels.suptitle(f"activation maximization at {layer}")
  return display.save(panels, directory, "activation_maximization", "Activation maximization",
                      "Inputs optimized to excite one channel each (Fourier parametrization, "
                      "jitter; Olah et al. 2017): the pattern each channel is tuned to.")

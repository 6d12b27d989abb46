"""Where the model looks: Grad-CAM for the top classes, for every class (grid and GIF),
and Guided Grad-CAM."""
import os
import tempfile
from typing import Sequence

import numpy as np
from etils import epath
from matplotlib import animation
from matplotlib import cm as mcm
from matplotlib import colors as mcolors

from cnnviz_jax import storage
from cnnviz_jax.report import display


def _interp(image: np.ndarray) -> str:
  return "nearest" if image.shape[0] < 64 else "antialiased"


def top_class_cams(images: np.ndarray, probabilities: np.ndarray, classes: np.ndarray,
                   cams: np.ndarray, class_names: Sequence[str], labels: np.ndarray,
                   directory: epath.Path | None = None,
                   layer: str | None = None) -> display.Figure:
  """Per image: the image, then Grad-CAM (Selvaraju et al. 2017) of its k most probable classes
  with p.

  Maps are scaled by the image's largest map, so a weak class looks weak. `layer`, the maps'
  layer, only labels the figure.
  """
  b, k = classes.shape
  panels = display.Panels(b, k + 1, cell=1.8)
  for i in range(b):
    panels.show(i, 0, images[i], f"true: {display.short(class_names[labels[i]])}")
    scale = max(float(cams[i].max()), 1e-12)
    for j in range(k):
      c = classes[i, j]
      panels.show(i, j + 1, display.overlay(images[i], cams[i, j] / scale),
                  f"{display.short(class_names[c])} {probabilities[i, c]:.1%}")
  panels.colorbar("Grad-CAM / image max")
  at = f" at {layer}" if layer else ""
  panels.suptitle(f"Grad-CAM{at} for the top-{k} classes (probability in the title)")
  return display.save(panels, directory, "grad_cam_top_classes", f"Grad-CAM, top {k} classes",
                      f"Where the evidence for each of the {k} most probable classes lies"
                      f"{f' ({layer}, the last spatial layer)' if layer else ''}. Heat is "
                      "relative to the image's strongest map: a class with little evidence "
                      "stays dark.")


def _by_class(classes: np.ndarray, cams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Reorders one image's (K,) classes and (K, h, w) maps by class index."""
  order = np.argsort(classes)
  return classes[order], cams[order]


def all_class_grid(images: np.ndarray, classes: np.ndarray, cams: np.ndarray,
                   probabilities: np.ndarray, class_names: Sequence[str],
                   directory: epath.Path | None = None) -> display.Figure:
  """Rows: images; columns: Grad-CAM of every class (class order), one scale per image."""
  b, k = classes.shape
  every = k == len(class_names)
  panels = display.Panels(b, k + 1, cell=1.4, label_lines=1, title_lines=1)
  for i in range(b):
    panels.show(i, 0, images[i], "image" if i == 0 else None)
    row_classes, row_cams = _by_class(classes[i], cams[i]) if every else (classes[i], cams[i])
    scale = max(float(row_cams.max()), 1e-12)
    for j, (c, m) in enumerate(zip(row_classes, row_cams)):
      title = display.short(class_names[c], 12) if (i == 0 or not every) else None
      panels.show(i, j + 1, display.overlay(images[i], m / scale), title,
                  f"{probabilities[i, c]:.0%}")
  panels.colorbar("Grad-CAM / image max")
  what = "every class" if every else f"the top {k} classes"
  panels.suptitle(f"Grad-CAM for {what} (probability under each map)")
  return display.save(panels, directory, "grad_cam_all_classes", f"Grad-CAM for {what}",
                      "Each column asks: where is the evidence for this class? The true "
                      "class's map should sit on the object; others should stay dark.")


def all_class_gif(image: np.ndarray, classes: np.ndarray, cams: np.ndarray,
                  probabilities: np.ndarray, class_names: Sequence[str],
                  directory: epath.Path | None = None, label: int | None = None,
                  fps: float = 1.5) -> display.Figure:
  """An animation, one frame per class (class order): Grad-CAM over one image.

  With a directory it is written as directory/grad_cam_all_classes.gif (the Figure's path;
  a notebook plays it with IPython.display.Image(figure.path)); the Figure itself shows the
  first frame.
  """
  every = len(classes) == len(class_names)
  classes, cams = _by_class(classes, cams) if every else (classes, cams)
  scale = max(float(cams.max()), 1e-12)
  fig = display.Figure(figsize=(4.0, 3.4))  # fixed layout: frames must not jump
  ax = fig.add_axes((0.03, 0.03, 0.72, 0.82))
  ax.set_xticks([])
  ax.set_yticks([])
  shown = ax.imshow(display.overlay(image, cams[0] / scale), interpolation=_interp(image))
  fig.colorbar(mcm.ScalarMappable(norm=mcolors.Normalize(0, 1), cmap=display.HEAT),
               cax=fig.add_axes((0.80, 0.1, 0.04, 0.68)), label="Grad-CAM / image max")
  title = ax.set_title("", fontsize=9)

  def frame(j):
    shown.set_data(display.overlay(image, cams[j] / scale))
    c = classes[j]
    mark = " (true)" if label is not None and c == label else ""
    title.set_text(f"{display.short(class_names[c], 18)}{mark}: p={probabilities[c]:.1%}")
    return shown, title

  frame(0)
  display.save(fig, None, "grad_cam_all_classes_gif", "Grad-CAM for every class, animated",
               f"{len(classes)} frames, one per class.")
  if directory is not None:
    fig.path = _write_gif(fig, frame, len(classes), fps, storage.path(directory))
    frame(0)
  return fig


def _write_gif(fig: display.Figure, frame, frames: int, fps: float,
               directory: epath.Path) -> epath.Path:
  directory.mkdir(parents=True, exist_ok=True)
  path = directory / "grad_cam_all_classes.gif"
  movie = animation.FuncAnimation(fig, frame, frames=frames, blit=False)
  with tempfile.TemporaryDirectory() as local:  # matplotlib's movie writers need a local file
    movie.save(os.path.join(local, path.name), writer=animation.PillowWriter(fps=fps),
               dpi=display.DPI)
    path.write_bytes((epath.Path(local) / path.name).read_bytes())
  return path


def guided_grad_cam(images: np.ndarray, cams: np.ndarray, guided: np.ndarray,
                    guided_cam: np.ndarray, classes: np.ndarray, class_names: Sequence[str],
                    directory: epath.Path | None = None) -> display.Figure:
  """Per image: image | Grad-CAM | guided backprop | Guided Grad-CAM, for the top-1 class."""
  b = len(images)
  panels = display.Panels(b, 4, cell=1.8, label_lines=1)
  names = ("image", "Grad-CAM", "guided backprop", "Guided Grad-CAM")
  for i in range(b):
    top = (lambda j: names[j]) if i == 0 else (lambda j: None)
    panels.show(i, 0, images[i], top(0), f"predicted: {display.short(class_names[classes[i]])}")
    panels.show(i, 1, display.overlay(images[i], display.unit(cams[i])), top(1))
    panels.show(i, 2, display.signed_image(guided[i]), top(2))
    panels.show(i, 3, display.signed_image(guided_cam[i]), top(3))
  panels.colorbar("Grad-CAM (min-max)")
  panels.suptitle("Guided Grad-CAM = guided backprop × upsampled Grad-CAM (top-1 class)")
  return display.save(panels, directory, "guided_grad_cam", "Guided Grad-CAM",
                      "Fine detail of guided backprop, kept only where Grad-CAM finds class "
                      "evidence (Selvaraju et al. 2017). Grey is zero; light and dark are "
                      "positive and negative gradients.")

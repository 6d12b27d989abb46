"""Input-resolution attributions: guided backprop and deconvnet per image, per class, and
for one unit of a convolutional layer (seeds 000 and 004)."""
from etils import epath
from typing import Sequence

import numpy as np

from cnnviz_jax.report import display

_CAPTION_SIGN = "Grey is zero; light and dark pixels are positive and negative gradients."


def guided_and_deconv(images: np.ndarray, guided: np.ndarray, deconv: np.ndarray,
                      classes: np.ndarray, class_names: Sequence[str],
                      directory: epath.Path | None = None) -> display.Figure:
  """Rows: images; columns: image, guided backprop, deconvnet (top-1 class)."""
  panels = display.Panels(len(images), 3, cell=1.8, label_lines=1)
  for i, image in enumerate(images):
    top = ("image", "guided backprop", "deconvnet") if i == 0 else (None,) * 3
    panels.show(i, 0, image, top[0], f"predicted: {display.short(class_names[classes[i]])}")
    panels.show(i, 1, display.signed_image(guided[i]), top[1])
    panels.show(i, 2, display.signed_image(deconv[i]), top[2])
  panels.suptitle("guided backprop and deconvnet, predicted class")
  return display.save(panels, directory, "guided_backprop_deconvnet",
                      "Guided backprop and deconvnet",
                      "Which input pixels move the predicted class's score, with negative "
                      "gradients stopped at every ReLU (guided backprop) or only the "
                      f"top-down signal kept (deconvnet). {_CAPTION_SIGN}")


def per_class(image: np.ndarray, classes: np.ndarray, guided: np.ndarray, deconv: np.ndarray,
              probabilities: np.ndarray, class_names: Sequence[str],
              directory: epath.Path | None = None) -> display.Figure:
  """One image: guided backprop (row 1) and deconvnet (row 2) for each class."""
  panels = display.Panels(2, len(classes) + 1, cell=1.6)
  for r, name in enumerate(("guided backprop", "deconvnet")):
    panels.show(r, 0, image, "image" if r == 0 else None)
    panels.side(r, name)
  for j, c in enumerate(classes):
    panels.show(0, j + 1, display.signed_image(guided[j]),
                f"{display.short(class_names[c], 12)} {probabilities[c]:.0%}")
    panels.show(1, j + 1, display.signed_image(deconv[j]))
  panels.suptitle("guided backprop and deconvnet for each class, one image")
  return display.save(panels, directory, "guided_backprop_per_class",
                      "Guided backprop per class",
                      "The same image explained for every class: guided backprop is known "
                      "to change little between classes (it reconstructs the image more than "
                      f"it explains the decision; see the sanity check). {_CAPTION_SIGN}")


def neuron(images: np.ndarray, units: np.ndarray, guided: np.ndarray, layer: str,
           directory: epath.Path | None = None, field=None) -> display.Figure:
  """Per image: guided backprop of one random active unit (row, col, channel) of `layer`,
  with the unit's receptive field outlined when `field` (a ReceptiveField) is given."""
  b = len(images)
  cols = min(4, b)
  panels = display.Panels(2 * -(-b // cols), cols, cell=1.8)
  for i in range(b):
    r, c = 2 * (i // cols), i % cols
    row, col, channel = (int(v) for v in units[i])
    panels.show(r, c, images[i], f"unit ({row}, {col}), ch {channel}")
    if field is not None:
      panels.outline(r, c, images[i].shape, *field.region((row, col)))
    panels.show(r + 1, c, display.signed_image(guided[i]))
  panels.suptitle(f"guided backprop of a random active unit of {layer}")
  outline = " The cyan box is the unit's receptive field." if field is not None else ""
  return display.save(panels, directory, "guided_backprop_neuron", "Guided backprop of one unit",
                      f"Seeds 000/004: what one unit of {layer} responds to in each image "
                      f"(image above, attribution below).{outline} {_CAPTION_SIGN}")

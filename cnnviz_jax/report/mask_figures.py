"""Right for the right reasons? Grad-CAM against the object masks, where the data has them.

For up to `_POOL` images of the report's split: Grad-CAM of the predicted class at the run's
penalty layer (if it trained with a CAM penalty) or the last spatial layer, and the share
of its mass inside the object mask (`explain.mass_inside`, masks area-averaged to the map).
The section shows the number next to the chance level (a map spread evenly scores the
object's mean cover) and overlays of the images whose maps lie least on the object: on
the decoy shapes, a shortcut-taking model lights up the colored corner patch.
Comparing two runs (plain vs penalized): each report shows its own number;
`python -m experiments.right_reasons` puts the runs side by side.
"""
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax import explain
from cnnviz_jax.data import datasets
from cnnviz_jax.report import display, html, samples

_POOL = 256  # images measured (64 above 64 px: memory and time)
_SHOWN = 8
_CAM_KINDS = ("grad_cam", "grad_cam_plus_plus", "xgrad_cam", "layer_cam")


@functools.partial(jax.jit, static_argnums=(0, 1))
def _cams(model, layer, variables, x):  # Grad-CAM of the top-1 class and its probability
  probabilities = jax.nn.softmax(model.apply(variables, x, train=False), -1)
  return explain.grad_cam(model, variables, x, layer), jnp.max(probabilities, -1)


def measure(model, variables, images: np.ndarray, masks: np.ndarray, layer: str,
            batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(cams (N, h, w), in-mask mass (N,), top-1 probability (N,)) in batches."""
  cams, probabilities = [], []
  for start in range(0, len(images), batch):
    c, p = _cams(model, layer, variables, jnp.asarray(images[start:start + batch]))
    cams.append(np.asarray(c))
    probabilities.append(np.asarray(p))
  cams = np.concatenate(cams)
  inside = np.asarray(explain.mass_inside(jnp.asarray(cams), jnp.asarray(masks)))
  return cams, inside, np.concatenate(probabilities)


def _layer(run, default: str) -> str:
  penalty = dict(run.config.get("explanation_loss") or {})
  if penalty.get("kind") in _CAM_KINDS and penalty.get("layer"):
    return penalty["layer"]
  return default


def overlays(images: np.ndarray, masks: np.ndarray, cams: np.ndarray, inside: np.ndarray,
             layer: str, directory: pathlib.Path | None = None) -> display.Figure:
  """Top row: image with the object's outline; below: Grad-CAM with its in-mask share."""
  n = len(images)
  panels = display.Panels(2, n, cell=1.5, fontsize=7)
  for i in range(n):
    panels.show(0, i, display.outline_mask(images[i], masks[i]), "object" if i == 0 else None)
    panels.show(1, i, display.overlay(images[i], display.unit(cams[i])), f"in mask {inside[i]:.0%}")
  panels.suptitle(f"Grad-CAM (predicted class, {layer}) on the images it places least "
                  "on the object")
  return display.save(panels, directory, "in_mask_grad_cam", "Grad-CAM against the object",
                      "The images whose Grad-CAM lies least on the object (outlined above). "
                      "A model right for the right reasons lights up the object; one that "
                      "took a shortcut lights up something else, such as a decoy patch.")


def section(run, to_rgb, directory: pathlib.Path, split: str, layer: str) -> list[html.Section]:
  """The 'right reasons' section, or [] when the data has no object masks."""
  cfg = run.data_config
  if not datasets.get_source(cfg, split).has_object_mask:
    return []
  pool = samples.examples(cfg, split, _POOL if cfg["image_size"] <= 64 else _POOL // 4)
  layer = _layer(run, layer)
  cams, inside, _ = measure(run.model, run.variables, pool.images, pool.object_masks, layer)
  chance = float(pool.object_masks.mean())
  worst = np.argsort(inside, kind="stable")[:_SHOWN]
  out = html.Section("masks", intro=(
      "Does the model look at the object? The share of Grad-CAM's mass inside the object "
      "mask (masks averaged down to the map's cells), for the predicted class."))
  penalty = dict(run.config.get("explanation_loss") or {})
  trained = (f"trained with an explanation penalty: {penalty['kind']}, weight "
             f"{penalty.get('weight')}" + (f", layer {penalty['layer']}" if penalty.get('layer')
                                          else "") if penalty.get("kind") else "plain training")
  out.html.append(html.table(
      ["split", "images", "layer", "Grad-CAM mass in the mask", "a uniform map", "run"],
      [[split, len(inside), layer, f"{inside.mean():.1%}", f"{chance:.1%}", trained]]))
  out.figures.append(overlays(to_rgb(pool.images[worst]), pool.object_masks[worst], cams[worst],
                              inside[worst], layer, directory))
  return [out]

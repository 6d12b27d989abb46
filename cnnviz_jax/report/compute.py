"""Every explanation a report draws for a batch of images, in one jitted call.

One compiled function per (model, batch shape) shares the forward pass between the
CAMs, guided backprop, deconvnet and feature maps; the host gets numpy arrays back.
"""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax import explain
from cnnviz_jax.models import taps
from cnnviz_jax.report.trained_run import ReportError

MAX_CAM_CLASSES = 20  # "CAM for every class" up to this many; the top ones beyond
PER_CLASS_IMAGES = 8  # guided backprop / deconvnet per class: at most this many classes


@dataclasses.dataclass
class Explanations:
  layer: str  # the CAM layer (the last spatial one by default)
  probabilities: np.ndarray  # (B, C)
  classes: np.ndarray  # (B, K) classes of `cams`, best first; K = min(C, MAX_CAM_CLASSES)
  cams: np.ndarray  # (B, K, h, w) raw Grad-CAM (>= 0) of those classes
  guided: np.ndarray  # (B, H, W, 3) guided backprop of the top-1 class
  deconv: np.ndarray  # (B, H, W, 3) deconvnet of the top-1 class
  guided_grad_cam: np.ndarray  # (B, H, W, 3)
  neuron: np.ndarray  # (B, 3) (row, col, channel) of a random active unit of `layer`
  guided_neuron: np.ndarray  # (B, H, W, 3) guided backprop of that unit
  per_class_classes: np.ndarray  # (P,) classes explained for image 0
  guided_per_class: np.ndarray  # (P, H, W, 3) image 0, guided backprop per class
  deconv_per_class: np.ndarray  # (P, H, W, 3) image 0, deconvnet per class
  feature_maps: dict[str, np.ndarray]  # {layer: (h, w, C)} of image 0
  layer_activations: np.ndarray  # (B, h, w, C) of `layer`

  def top(self, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(classes (B, k), Grad-CAMs (B, k, h, w)) of the k most probable classes."""
    return self.classes[:, :k], self.cams[:, :k]


def choose_layers(model: nn.Module, variables, image_shape, layer: str | None = None,
                  feature_layers: list[str] | None = None) -> tuple[str, tuple[str, ...]]:
  """(CAM layer: by default the last spatial one, feature-map layers: by default the first,
  a middle and the last); ReportError listing the valid names for an unknown one."""
  asked = [n for n in [layer, *(feature_layers or [])] if n is not None]
  try:
    names = list(taps.check_layers(model, variables,
                                   jax.ShapeDtypeStruct((1, *image_shape), jnp.float32), asked))
  except ValueError as e:  # the report's user-input error
    raise ReportError(str(e)) from None
  if not names:  # e.g. an MLP: nothing to draw a map or a feature map of
    raise ReportError(f"the report explains a model's spatial layers, and "
                      f"{type(model).__name__} has none: train it with --noreport")
  chosen = feature_layers or [names[0], names[len(names) // 2], names[-1]]
  return layer or names[-1], tuple(dict.fromkeys(chosen))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _explain(model, layer, feature_layers, k, per_class, variables, x, key):
  logits, acts = taps.apply_with_taps(model, variables, x, list({layer, *feature_layers}))
  probabilities = jax.nn.softmax(logits.astype(jnp.float32), -1)
  classes = jax.lax.top_k(logits, k)[1]
  cams = explain.grad_cam(model, variables, x, layer, classes)  # (B, K, h, w)
  top1 = classes[:, 0]
  guided = explain.guided_backprop(model, variables, x, top1)
  deconv = explain.deconvnet(model, variables, x, top1)
  heat = explain.normalize(explain.upsample(cams[:, 0], x.shape[1:3]))
  # a random unit among those that fire (a dead unit would give a blank picture)
  a = acts[layer]
  score = jax.random.uniform(key, a.shape) * (a > 0) + (a > 0)
  flat = jnp.argmax(score.reshape(a.shape[0], -1), -1)
  row, col, channel = jnp.unravel_index(flat, a.shape[1:])
  guided_neuron = explain.guided_backprop(model, variables, x, neuron=(layer, row, col, channel))
  first = x[:1]
  per = list(range(per_class))
  guided_per = explain.guided_backprop(model, variables, first, per)[0]
  deconv_per = explain.deconvnet(model, variables, first, per)[0]
  return dict(probabilities=probabilities, classes=classes, cams=cams, guided=guided,
              deconv=deconv, guided_grad_cam=guided * heat[..., None],
              neuron=jnp.stack([row, col, channel], -1), guided_neuron=guided_neuron,
              guided_per_class=guided_per, deconv_per_class=deconv_per,
              feature_maps={n: acts[n][0] for n in feature_layers}, layer_activations=a)


def explain_batch(model: nn.Module, variables, x: np.ndarray, num_classes: int,
                  layer: str | None = None, feature_layers: list[str] | None = None,
                  seed: int = 0) -> Explanations:
  """All of the report's attributions for images x (B, H, W, 3), model inputs."""
  layer, feature_layers = choose_layers(model, variables, x.shape[1:], layer, feature_layers)
  k = min(num_classes, MAX_CAM_CLASSES)
  per_class = min(num_classes, PER_CLASS_IMAGES)
  out = jax.device_get(_explain(model, layer, feature_layers, k, per_class, variables,
                                jnp.asarray(x), jax.random.key(seed)))
  out = jax.tree.map(np.asarray, out)
  return Explanations(layer=layer, per_class_classes=np.arange(per_class), **out)

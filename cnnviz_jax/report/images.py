"""Explain a user's own image files (pytorch-grad-cam's cam.py use case), in one call.

  explain_images(model, variables, meta_like, ["a.jpg", "b.png"], ["grad_cam", "guided_backprop"],
                 "out/")
writes out/<image>_<method>.png at each image's own size (maps resized back onto the
original), one summary figure per image, and out/report.html. Images are resized
straight to the model's input size (no crop), so every map covers the whole picture.
"""
import dataclasses
import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from PIL import Image, UnidentifiedImageError

from cnnviz_jax import explain, models, storage, weights
from cnnviz_jax.data import image_folder
from cnnviz_jax.report import display, html
from cnnviz_jax.report import trained_run
from cnnviz_jax.report.trained_run import ReportError
from cnnviz_jax.weights import preprocessing

# name -> (function, kind): 'cam' maps are (B, h, w) at a layer; 'pixels' are (B, H, W, 3).
METHODS: dict[str, tuple[Callable, str]] = {
    "grad_cam": (explain.grad_cam, "cam"),
    "grad_cam_plus_plus": (explain.grad_cam_plus_plus, "cam"),
    "xgrad_cam": (explain.xgrad_cam, "cam"),
    "layer_cam": (explain.layer_cam, "cam"),
    "eigen_cam": (explain.eigen_cam, "cam"),
    "score_cam": (explain.score_cam, "cam"),
    "hires_cam": (explain.hires_cam, "cam"),
    "grad_cam_elementwise": (explain.grad_cam_elementwise, "cam"),
    "eigen_grad_cam": (explain.eigen_grad_cam, "cam"),
    "kpca_cam": (explain.kpca_cam, "cam"),
    "fem": (explain.fem, "cam"),
    "shapley_cam": (explain.shapley_cam, "cam"),
    "finer_cam": (explain.finer_cam, "cam"),
    "random_cam": (explain.random_cam, "cam"),
    "ablation_cam": (explain.ablation_cam, "cam"),
    "full_grad": (explain.full_grad, "cam"),  # at the input's resolution, no layer
    "guided_backprop": (explain.guided_backprop, "pixels"),
    "deconvnet": (explain.deconvnet, "pixels"),
    "guided_grad_cam": (explain.guided_grad_cam, "pixels"),
    "gradient": (explain.gradient, "pixels"),
    "gradient_x_input": (explain.gradient_x_input, "pixels"),
    "integrated_gradients": (explain.integrated_gradients, "pixels"),
    "smoothgrad": (explain.smoothgrad, "pixels"),
    "smoothgrad_sq": (functools.partial(explain.smoothgrad, kind="sq"), "pixels"),
    "vargrad": (functools.partial(explain.smoothgrad, kind="var"), "pixels"),
    "deep_lift": (explain.deep_lift, "pixels"),
    "deep_lift_shap": (explain.deep_lift_shap, "pixels"),
    "gradient_shap": (explain.gradient_shap, "pixels"),
    "lrp": (explain.lrp, "pixels"),
    # layer attributions (B, h, w, C), shown as CAMs: summed over the layer's channels
    "layer_gradient_x_activation": (explain.layer_gradient_x_activation, "cam"),
    "internal_influence": (explain.internal_influence, "cam"),
    "layer_conductance": (explain.layer_conductance, "cam"),
    "layer_integrated_gradients": (explain.layer_integrated_gradients, "cam"),
    "layer_deep_lift": (explain.layer_deep_lift, "cam"),
    "occlusion": (explain.occlusion, "pixels"),
    "feature_ablation": (explain.feature_ablation, "pixels"),
    "shapley_value_sampling": (explain.shapley_value_sampling, "pixels"),
    "kernel_shap": (explain.kernel_shap, "pixels"),
    "lime": (explain.lime, "pixels"),
}
_SIGNED = ("guided_backprop", "deconvnet", "guided_grad_cam")  # shown as grey-centered images
_LAYERED = ("guided_grad_cam",)  # pixel methods that take a layer
# Perturbation methods over segments: a 7 × 7 grid of the model's input here.
_SEGMENTED = ("feature_ablation", "shapley_value_sampling", "kernel_shap", "lime")
# Each position's attribution is the sum over the layer's channels (signed; min-max shown).
_LAYER_ATTRIBUTIONS = ("layer_gradient_x_activation", "internal_influence", "layer_conductance",
                       "layer_integrated_gradients", "layer_deep_lift")
_SHAP = ("deep_lift_shap", "gradient_shap")


@dataclasses.dataclass
class Explainee:
  """What explains: a model, its variables, class names and how to feed it uint8 images."""
  model: nn.Module
  variables: dict
  class_names: Sequence[str]
  input_size: int
  preprocess: Callable[[np.ndarray], np.ndarray]  # uint8 (B, S, S, 3) -> model input
  description: str = ""


def explainee(workdir: str | None, weights_dir: str | None):
  """An Explainee from a workdir or a converted-weights directory."""
  if weights_dir:
    try:
      variables, meta = weights.load(weights_dir)
    except (FileNotFoundError, ImportError, ValueError) as e:  # no directory, wheel, arch
      raise ReportError(str(e)) from e
    model = models.create(meta.arch, num_classes=meta.num_classes)
    return Explainee(model, variables, meta.class_names, meta.input_size, meta.preprocess,
                     f"{meta.arch} ({meta.source} weights, {weights_dir})")
  run = trained_run.load_run(workdir)
  cfg = run.data_config
  preprocess = functools.partial(preprocessing.preprocess, mode=cfg["normalization"],
                                 mean=cfg["mean"], std=cfg["std"])
  return Explainee(run.model, run.variables, run.class_names, cfg["image_size"], preprocess,
                   f"{run.config.model.name} from {run.workdir} ({run.status()})")


def check_methods(methods: Sequence[str]) -> list[str]:
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ReportError(f"unknown method(s) {unknown}; valid methods: {', '.join(METHODS)}")
  return list(methods)


def read_image(path) -> np.ndarray:
  """uint8 (H, W, 3) RGB of an image file (local or at a URL); ReportError naming the file
  if it cannot."""
  try:
    path = storage.path(path)
  except storage.PathError as e:
    raise ReportError(f"cannot read image: {e}") from e
  if not path.exists() or path.is_dir():
    raise ReportError(f"cannot read image {path}: no such file")
  try:
    return image_folder.decode_rgb(path.read_bytes())  # as training reads an image folder
  except Image.DecompressionBombError as e:  # PIL refuses before decoding
    raise ReportError(f"cannot read image {path}: over PIL's limit of "
                      f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels ({e})") from e
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise ReportError(f"cannot read image {path}: not a readable image ({e})") from e


def _resized(image: np.ndarray, size: int) -> np.ndarray:
  return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _to_size(picture: np.ndarray, height: int, width: int) -> np.ndarray:
  """An RGB picture in [0, 1] resized to (height, width)."""
  image = Image.fromarray(display.to_uint8(picture)).resize((width, height), Image.BILINEAR)
  return np.asarray(image)


def shap_baselines(x: jax.Array, count: int = 4) -> jax.Array:
  """The SHAP methods' reference distribution (count, H, W, C): the zero input, then seeded
  standard normal draws, as Captum's GradientShap example (torch.randn baselines). The same
  for every batch, so an image's map does not depend on the others."""
  noise = jax.random.normal(jax.random.key(0), (count - 1, *x.shape[1:]), x.dtype)
  return jnp.concatenate([jnp.zeros_like(noise[:1]), noise])


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run(method: str, model: nn.Module, layer: str | None, variables, x, target):
  fn, kind = METHODS[method]
  if method in _LAYER_ATTRIBUTIONS:
    return jnp.sum(fn(model, variables, x, layer, target), axis=-1)
  if method in _SHAP:
    return fn(model, variables, x, target, shap_baselines(x), **(
        {"key": jax.random.key(0)} if method == "gradient_shap" else {}))
  if method == "eigen_cam":
    return fn(model, variables, x, layer)
  if method == "full_grad":
    return fn(model, variables, x, target)
  if method == "random_cam":  # the baseline the others should beat: a seeded draw
    return fn(model, variables, x, layer, target, key=jax.random.key(0))
  if kind == "cam" or method in _LAYERED:
    return fn(model, variables, x, layer, target)
  if method in _SEGMENTED:
    return fn(model, variables, x, target, segments=explain.grid_segments(x.shape))
  return fn(model, variables, x, target)


def method_maps(model: nn.Module, variables, x, layer: str | None, targets: np.ndarray,
                methods: Sequence[str]) -> dict[str, np.ndarray]:
  """{method: its maps of model inputs x (B, H, W, 3) for classes `targets` (B,)}: CAM
  kinds (B, h, w) at `layer`, the others (B, H, W, 3); one jitted call per method."""
  return {m: np.asarray(_run(m, model, layer, variables, jnp.asarray(x), jnp.asarray(targets)))
          for m in methods}


def picture(method: str, image: np.ndarray, m: np.ndarray) -> np.ndarray:
  """uint8 (H, W, 3): one image's map `m` drawn on the image ((H, W, 3) in [0, 1]): CAM kinds
  min-max normalized as heat over it, signed gradients grey-centered, the other attributions'
  |a| as heat."""
  h, w = image.shape[:2]
  if METHODS[method][1] == "cam":
    return display.to_uint8(display.overlay(image, display.unit(m)))
  if method in _SIGNED:
    return _to_size(display.signed_image(m), h, w)
  return display.to_uint8(display.overlay(image, display.resize(display.magnitude(m), (h, w))))


def methods_figure(images: np.ndarray, maps: dict[str, np.ndarray], classes: np.ndarray,
                   class_names: Sequence[str], directory, layer: str) -> display.Figure:
  """Rows: images ((B, H, W, 3) in [0, 1]); columns: the image, then each method's map of
  its class in `classes` (B,), drawn as the explain-images overlays."""
  panels = display.Panels(len(images), len(maps) + 1, cell=1.8, label_lines=1)
  for i, image in enumerate(images):
    panels.show(i, 0, image, "image" if i == 0 else None,
                f"explained: {display.short(class_names[classes[i]])}")
    for j, (method, m) in enumerate(maps.items()):
      panels.show(i, j + 1, picture(method, image, m[i]),
                  method.replace("_", " ") if i == 0 else None)
  panels.colorbar("relevance (min-max; |attribution| for pixel maps)")
  panels.suptitle("More attribution methods, for the top-1 class")
  return display.save(panels, directory, "more_methods", "More attribution methods",
                      f"The methods chosen for this report ({', '.join(maps)}), each of the "
                      f"image's top-1 class; layer methods and CAMs at {layer}, signed "
                      "gradients grey-centered, other pixel attributions as |attribution|.")


def explain_images(explainee: Explainee, paths: Sequence, methods: Sequence[str], output,
                   layer: str | None = None, target: int | None = None) -> epath.Path:
  """Writes overlays, per-image summaries and report.html into `output`; returns the report."""
  methods = check_methods(methods)
  output = storage.path(output)
  originals = [read_image(p) for p in paths]  # every file is checked before any work
  if not originals:
    raise ReportError("no image given: pass --images a.jpg [b.png …]")
  model, variables = explainee.model, explainee.variables
  x = jnp.asarray(explainee.preprocess(
      np.stack([_resized(o, explainee.input_size) for o in originals])))
  logits = jax.jit(lambda v, z: model.apply(v, z, train=False))(variables, x)
  probabilities = np.asarray(jax.nn.softmax(logits.astype(jnp.float32), -1))
  if target is not None and not 0 <= target < len(explainee.class_names):
    raise ReportError(f"target class {target} out of range: the model has "
                      f"{len(explainee.class_names)} classes")
  targets = (np.full(len(originals), target) if target is not None
             else probabilities.argmax(-1)).astype(np.int32)
  if any(METHODS[m][1] == "cam" or m in _LAYERED for m in methods):
    try:
      layer = explain.resolve_layers(model, variables, x, layer)[-1]
    except ValueError as e:
      raise ReportError(str(e)) from e
  maps = method_maps(model, variables, x, layer, targets, methods)
  written = _write_overlays(originals, paths, maps, output)
  section = html.Section("looks", intro=(
      f"{explainee.description}. Maps explain each image's "
      f"{'class ' + str(target) if target is not None else 'top-1 class'}"
      f"{'; CAMs at layer ' + layer if layer else ''}. Overlays at the images' own sizes "
      f"are in {output}."))
  for i, path in enumerate(paths):
    section.figures.append(_summary(i, storage.path(path), originals[i], written[i], maps,
                                    probabilities[i], targets[i], explainee.class_names, output))
  top = [[storage.path(p).name] + [f"{display.short(explainee.class_names[c], 24)} "
                                   f"{probabilities[i, c]:.1%}"
                                   for c in np.argsort(-probabilities[i])[:3]]
         for i, p in enumerate(paths)]
  results = html.Section("results", html=[html.table(["image", "1st", "2nd", "3rd"], top)])
  page = html.render(f"{', '.join(methods)} — {len(paths)} image(s)", [results, section],
                     subtitle=explainee.description)
  return html.write(output / "report.html", page)


def _write_overlays(originals, paths, maps, output: epath.Path) -> list[dict[str, np.ndarray]]:
  """output/<stem>_<method>.png at the original size; -> per image {method: picture}."""
  output.mkdir(parents=True, exist_ok=True)
  out = []
  for i, (original, path) in enumerate(zip(originals, paths)):
    image = original.astype(np.float32) / 255.0
    pictures = {method: picture(method, image, m[i]) for method, m in maps.items()}
    for method, drawn in pictures.items():
      (output / f"{storage.path(path).stem}_{method}.png").write_bytes(
          storage.png_bytes(drawn, compress_level=6))  # PIL's default level
    out.append(pictures)
  return out


def _summary(i: int, path: epath.Path, original: np.ndarray, pictures: dict, maps: dict,
             probabilities: np.ndarray, target: int, class_names, output) -> display.Figure:
  panels = display.Panels(1, len(pictures) + 1, cell=2.2, label_lines=1)
  top3 = ", ".join(f"{display.short(class_names[c], 18)} {probabilities[c]:.0%}"
                   for c in np.argsort(-probabilities)[:3])
  panels.show(0, 0, original, path.name, top3)
  for j, (method, picture) in enumerate(pictures.items()):
    panels.show(0, j + 1, picture, method.replace("_", " "))
  panels.suptitle(f"{path.name}: explaining {class_names[target]} ({probabilities[target]:.1%})")
  if any(METHODS[m][1] == "cam" or m not in _SIGNED for m in maps):
    panels.colorbar("relevance (min-max)")
  return display.save(panels, output / "figures", f"{i:03d}_{path.stem}", path.name,
                      f"Top classes: {top3}.")

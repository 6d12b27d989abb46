"""The 'is the explanation faithful?' section: deletion/insertion AUCs, the pointing game
(where the data has object masks) and the model-randomisation sanity check, for Grad-CAM
and guided backprop against trivial baselines. Each metric runs in one jitted call."""
import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax import explain
from cnnviz_jax.explain import faithfulness, pointing_game as pointing_lib, sanity
from cnnviz_jax.report import display, faithful_figures, html, samples

DELETION_STEPS = 16  # curve resolution: (steps + 1) x 2B forward passes per method
POINTING_IMAGES = 64
SANITY_IMAGES = 4


@functools.partial(jax.jit, static_argnums=(0, 1))
def _deletion(model: nn.Module, steps: int, variables, x, saliency, target, key):
  result = faithfulness.deletion_insertion(model, variables, x, saliency, target, steps=steps,
                                           key=key)
  return result.deletion, result.insertion


def deletion_curves(model: nn.Module, variables, x: np.ndarray, cams: np.ndarray,
                    guided: np.ndarray, target: np.ndarray, seed: int = 0) -> dict:
  """{method: (deletion (B, S+1), insertion (B, S+1))} for Grad-CAM, guided backprop and
  random pixel order; one compiled call (maps brought to (B, H, W) first)."""
  size = x.shape[1:3]
  maps = {"Grad-CAM": display.resize(cams, size), "guided backprop": np.abs(guided).sum(-1),
          "random": np.random.default_rng(seed).random((len(x),) + size)}
  stacked = np.concatenate(list(maps.values())).astype(np.float32)
  b = len(x)
  deletion, insertion = jax.device_get(_deletion(
      model, DELETION_STEPS, variables, jnp.tile(x, (len(maps), 1, 1, 1)), stacked,
      jnp.tile(jnp.asarray(target), len(maps)), jax.random.key(seed)))
  return {name: (np.asarray(deletion[i * b:(i + 1) * b]), np.asarray(insertion[i * b:(i + 1) * b]))
          for i, name in enumerate(maps)}


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _pointing(model: nn.Module, layer: str, tolerance: float, variables, x, masks):
  target = jnp.argmax(model.apply(variables, x, train=False), -1)
  cams = explain.grad_cam(model, variables, x, layer, target)
  guided = explain.guided_backprop(model, variables, x, target)
  centre = -((jnp.arange(x.shape[1])[:, None] - (x.shape[1] - 1) / 2) ** 2 +
             (jnp.arange(x.shape[2])[None, :] - (x.shape[2] - 1) / 2) ** 2)
  centre = jnp.broadcast_to(centre, x.shape[:3]).astype(jnp.float32)
  size = x.shape[1:3]
  out = {}
  for name, m in (("Grad-CAM", cams), ("guided backprop", guided), ("centre", centre)):
    out[name] = (pointing_lib.pointing_game(m, masks, tolerance),
                 pointing_lib.peak(m, size))
  return cams, out


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _randomisation(model: nn.Module, method: str, layer: str, variables, x, target, key):
  explainer = (functools.partial(explain.grad_cam, layer=layer) if method == "Grad-CAM"
               else explain.guided_backprop)
  check = sanity.randomisation_check(explainer, model, variables, x, target, key=key)
  return check.spearman, check.maps, check.original


def faithful_section(model: nn.Module, variables, batch: samples.Examples, e, show,
                     cfg: dict, split: str, directory: pathlib.Path, seed: int = 0
                     ) -> html.Section:
  """e: the batch's compute.Explanations (its top-1 Grad-CAM and guided backprop)."""
  section = html.Section("faithful", intro=(
      "Three checks that an explanation reflects the model: removing what it marks should "
      "hurt the prediction, it should point at the object, and it should change when the "
      "weights it claims to explain are destroyed."))
  x, top1 = batch.images, e.classes[:, 0]
  rows = {}
  curves = deletion_curves(model, variables, x, e.cams[:, 0], e.guided, top1, seed)
  section.figures.append(faithful_figures.deletion_insertion(curves, directory))
  for name, (deletion, insertion) in curves.items():
    rows[name] = {"deletion": float(faithfulness.auc(deletion).mean()),
                  "insertion": float(faithfulness.auc(insertion).mean())}
  pool = samples.examples(cfg, split, POINTING_IMAGES)
  if pool.object_masks is not None:
    tolerance = max(1.0, 15.0 * x.shape[1] / 224)  # the paper's 15 px at 224 px
    cams, result = jax.device_get(_pointing(model, e.layer, tolerance, variables,
                                            jnp.asarray(pool.images),
                                            jnp.asarray(pool.object_masks)))
    hits = {k: np.asarray(v[0]) for k, v in result.items()}
    peaks = {k: np.asarray(v[1]) for k, v in result.items()}
    section.figures.append(faithful_figures.pointing_game(
        show(pool.images), pool.object_masks, np.asarray(cams), peaks, hits, tolerance,
        directory))
    for name, h in hits.items():
      rows.setdefault(name, {})["pointing"] = float(np.mean(h))
  else:
    section.notes.append("Pointing game skipped: this dataset has no object masks (the "
                         "synthetic shapes dataset has them).")
  n = min(SANITY_IMAGES, len(x))
  layers = sanity.parameter_layers(model, variables, jnp.asarray(x[:1]))[::-1]
  spearman, maps, originals = {}, {}, {}
  for method in ("Grad-CAM", "guided backprop"):
    rho, m, original = jax.device_get(_randomisation(
        model, method, e.layer, variables, jnp.asarray(x[:n]), jnp.asarray(top1[:n]),
        jax.random.key(seed)))
    spearman[method], maps[method], originals[method] = (np.asarray(rho), np.asarray(m)[:, 0],
                                                         np.asarray(original)[0])
    rows.setdefault(method, {})["sanity"] = float(np.asarray(rho)[-1].mean())
  section.figures.append(faithful_figures.randomisation_curves(layers, spearman, directory))
  section.figures.append(faithful_figures.randomisation_maps(show(x[:1])[0], layers, originals,
                                                             maps, directory))
  fmt = lambda r, k, f="{:.3f}": f.format(r[k]) if k in r else "–"
  section.html.append(html.table(
      ["method", "deletion AUC ↓", "insertion AUC ↑", "pointing game ↑",
       "ρ, all layers random ↓"],
      [[name, fmt(r, "deletion"), fmt(r, "insertion"), fmt(r, "pointing", "{:.0%}"),
        fmt(r, "sanity", "{:.2f}")] for name, r in rows.items()]))
  return section

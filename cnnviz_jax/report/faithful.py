"""The 'is the explanation faithful?' section: deletion/insertion AUCs, the pointing game
(where the data has object masks) and the model-randomization sanity check, for Grad-CAM
and guided backprop against trivial baselines, on the report's batch of test images
(reusing its maps). Compilation dominates the cost on CPU, so each metric compiles one
small program."""
import functools
from etils import epath

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax import explain
from cnnviz_jax.explain.faithfulness import auc
from cnnviz_jax.explain.pointing_game import peak
from cnnviz_jax.report import display, faithful_figures, html, samples

DELETION_STEPS = 16  # curve resolution: (steps + 1) x 2B forward passes per method
SANITY_IMAGES = 4


@functools.partial(jax.jit, static_argnums=(0, 1))
def _deletion(model: nn.Module, steps: int, variables, x, saliency, target, key):
  result = explain.deletion_insertion(model, variables, x, saliency, target, steps=steps,
                                           key=key)
  return result.deletion, result.insertion


def deletion_curves(model: nn.Module, variables, x: np.ndarray, cams: np.ndarray,
                    guided: np.ndarray, target: np.ndarray, seed: int = 0) -> dict:
  """{method: (deletion (B, S+1), insertion (B, S+1))} for Grad-CAM, guided backprop and
  random pixel order; one compiled call (maps brought to (B, H, W) first)."""
  size = x.shape[1:3]
  maps = {"Grad-CAM": display.resize(cams, size),
          "guided backprop": explain.maps.attribution_map(guided),
          "random": np.random.default_rng(seed).random((len(x),) + size)}
  stacked = np.concatenate(list(maps.values())).astype(np.float32)
  b = len(x)
  deletion, insertion = jax.device_get(_deletion(
      model, DELETION_STEPS, variables, jnp.tile(x, (len(maps), 1, 1, 1)), stacked,
      jnp.tile(jnp.asarray(target), len(maps)), jax.random.key(seed)))
  return {name: (np.asarray(deletion[i * b:(i + 1) * b]), np.asarray(insertion[i * b:(i + 1) * b]))
          for i, name in enumerate(maps)}


def pointing(cams: np.ndarray, guided: np.ndarray, masks: np.ndarray, tolerance: float
             ) -> tuple[dict, dict]:
  """({method: hits (B,)}, {method: peaks (B, 2)}) for Grad-CAM, guided backprop and a
  map peaking at the image center (the baseline a localizing map must beat)."""
  h, w = masks.shape[1:]
  rows, cols = np.arange(h)[:, None] - (h - 1) / 2, np.arange(w)[None, :] - (w - 1) / 2
  center = -(rows**2 + cols**2)
  maps = {"Grad-CAM": cams, "guided backprop": guided,
          "center": np.broadcast_to(center, masks.shape).astype(np.float32)}
  hits = {k: np.asarray(explain.pointing_game(jnp.asarray(m), jnp.asarray(masks), tolerance))
          for k, m in maps.items()}
  peaks = {k: np.asarray(peak(jnp.asarray(m), (h, w))) for k, m in maps.items()}
  return hits, peaks


def randomization(model: nn.Module, variables, x: np.ndarray, layer: str, target: np.ndarray,
                  seed: int = 0) -> tuple[list[str], dict, dict, dict]:
  """Cascading randomization (Adebayo et al., `explain.randomization_check`) of Grad-CAM
  and guided backprop on the same randomized models: (layers top-down, {method: Spearman
  (L, B)}, {method: maps (L, B, ...)}, {method: trained maps}). One model per loop step
  (chunk 1): the cheapest program to compile on a CPU."""
  def both(model, v, x, target):
    return {"Grad-CAM": explain.grad_cam(model, v, x, layer, target),
            "guided backprop": explain.guided_backprop(model, v, x, target)}
  check = explain.randomization_check(model, variables, jnp.asarray(x), both,
                                      jnp.asarray(target), key=jax.random.key(seed), chunk=1)
  host = lambda tree: {k: np.asarray(v) for k, v in jax.device_get(tree).items()}  # noqa: E731
  return check.layers, host(check.spearman), host(check.maps), host(check.original)


def faithful_section(model: nn.Module, variables, batch: samples.Examples, explained, to_rgb,
                     directory: epath.Path, seed: int = 0) -> html.Section:
  """e: the batch's compute.Explanations (its top-1 Grad-CAM and guided backprop)."""
  section = html.Section("faithful", intro=(
      "Three checks that an explanation reflects the model: removing what it marks should "
      "hurt the prediction, it should point at the object, and it should change when the "
      "weights it claims to explain are destroyed."))
  x, top1 = batch.images, explained.classes[:, 0]
  rows = {}
  curves = deletion_curves(model, variables, x, explained.cams[:, 0], explained.guided, top1, seed)
  section.figures.append(faithful_figures.deletion_insertion(curves, directory))
  for name, (deletion, insertion) in curves.items():
    rows[name] = {"deletion": float(auc(deletion).mean()),
                  "insertion": float(auc(insertion).mean())}
  if batch.object_masks is not None:
    tolerance = max(1.0, 15.0 * x.shape[1] / 224)  # the paper's 15 px at 224 px
    hits, peaks = pointing(explained.cams[:, 0], explained.guided, batch.object_masks, tolerance)
    section.figures.append(faithful_figures.pointing_game(
        to_rgb(x), batch.object_masks, explained.cams[:, 0], peaks, hits, tolerance, directory))
    for name, h in hits.items():
      rows.setdefault(name, {})["pointing"] = float(np.mean(h))
  else:
    section.notes.append("Pointing game skipped: this dataset has no object masks (the "
                         "synthetic shapes dataset has them).")
  n = min(SANITY_IMAGES, len(x))
  layers, spearman, maps, originals = randomization(model, variables, x[:n], explained.layer,
                                                    top1[:n], seed)
  for method, rho in spearman.items():
    rows.setdefault(method, {})["sanity"] = float(rho[-1].mean())
  maps = {k: v[:, 0] for k, v in maps.items()}
  originals = {k: v[0] for k, v in originals.items()}
  section.figures.append(faithful_figures.randomization_curves(layers, spearman, directory))
  section.figures.append(faithful_figures.randomization_maps(to_rgb(x[:1])[0], layers, originals,
                                                             maps, directory))
  fmt = lambda r, k, f="{:.3f}": f.format(r[k]) if k in r else "–"
  section.html.append(html.table(
      ["method", "deletion AUC ↓", "insertion AUC ↑", "pointing game ↑",
       "ρ, all layers random ↓"],
      [[name, fmt(r, "deletion"), fmt(r, "insertion"), fmt(r, "pointing", "{:.0%}"),
        fmt(r, "sanity", "{:.2f}")] for name, r in rows.items()]))
  return section

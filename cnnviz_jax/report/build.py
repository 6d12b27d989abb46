"""From a training workdir to W/report.html (and every figure as W/figures/*.png|gif).

  path = build.workdir_report("workdir/demo")  # or: python -m cnnviz_jax.report --workdir W

Loads the run (finished or partial), reads a few examples of the data, computes every
explanation for a small batch in one jitted call, draws the figures and writes one
self-contained HTML page. Kept cheap (8 images, subsets for costly methods) so that the
demo's train + report stays within its time budget.
"""
import logging
import time
from typing import Sequence

import jax
import numpy as np
from etils import epath

from cnnviz_jax import explain, storage
from cnnviz_jax.data import stats as data_stats
from cnnviz_jax.models import taps
from cnnviz_jax.report import (compute, data_figures, display, explain_figures, faithful,
                               gradient_figures, html, inside_figures, results_figures, samples,
                               training_figures)
from cnnviz_jax.report import images as report_images
from cnnviz_jax.report import mask_figures
from cnnviz_jax.report import trained_run
from cnnviz_jax.train import config_change

_SHOWN = 4  # images in the wide CAM grids
_PATCH_IMAGES = 512  # test images searched for max-activating patches


class _Timer:
  def __init__(self):
    self.start, self.marks = time.perf_counter(), {}

  def mark(self, name: str) -> None:
    now = time.perf_counter()
    self.marks[name] = now - self.start - sum(self.marks.values())


def _eval_split(run: trained_run.Run) -> str:
  """The split figures are drawn from: test if the run evaluates it, else the last one."""
  splits = list(run.results["splits"]) if run.results else list(
      run.config.get("eval_splits") or ("test",))
  return "test" if "test" in splits else splits[-1]


def data_section(run: trained_run.Run, to_rgb, directory: epath.Path) -> html.Section:
  cfg, section = run.data_config, html.Section("data")
  stats = data_stats.dataset_stats(cfg)
  section.figures.append(data_figures.class_distribution(stats, directory))
  train = samples.examples(cfg, "train", 16)
  section.figures.append(data_figures.sample_grid(to_rgb(train.images), train.labels,
                                                  run.class_names, directory))
  originals, augmented, description = samples.augmented(cfg, n=4, k=5, seed=run.config.seed)
  section.figures.append(data_figures.augmented_grid(originals, augmented, description,
                                                     directory))
  return section


def training_section(run: trained_run.Run, directory: epath.Path) -> html.Section:
  section = html.Section("training")
  changes = [[f"{record['step']:,}", c["field"], config_change.value_text(c, "old"),
              config_change.value_text(c, "new")]
             for record in run.workdir.config_changes() for c in record["changes"]]
  if changes:  # allowed with --config_change=allow, each in force from its step on
    section.html.append(html.table(["from step", "field", "old", "new"], changes,
                                   caption="Config changes during training"))
  if run.history:
    section.figures.append(training_figures.training_curves(run.history, directory,
                                                            run.planned_epochs))
  else:
    section.notes.append("No epoch has finished yet: history.json is missing.")
  return section


def results_section(run: trained_run.Run, to_rgb, pool: samples.Examples,
                    probabilities: np.ndarray, directory: epath.Path) -> html.Section:
  section = html.Section("results")
  if run.results is None:
    section.notes.append("Training did not finish, so there is no results.json: accuracy, "
                         "confusion matrix and mistakes appear once the run completes.")
    return section
  split = _eval_split(run)
  section.html.append(html.results_table(run.results))
  section.figures.append(results_figures.confusion_matrices(run.results, directory, split))
  section.figures.append(results_figures.per_class_accuracy(run.results, directory))
  wrong = results_figures.confidently_wrong(to_rgb(pool.images), pool.labels, probabilities,
                                            run.class_names, directory)
  if wrong is None:
    section.notes.append(f"No {split} image is misclassified ({len(pool.labels):,} checked).")
  else:
    section.figures.append(wrong)
  return section


def looks_section(run: trained_run.Run, batch: samples.Examples, pool: samples.Examples,
                  to_rgb, directory: epath.Path, cam_layer: str | None = None,
                  feature_layers: list[str] | None = None, quick: bool = False,
                  methods: Sequence[str] = ()) -> tuple[html.Section, dict]:
  """Attributions and the inside of the network for a batch; also returns the
  Explanations for the faithfulness section. methods: more explainers of the
  explain-images table (report/images.py METHODS), drawn for the shown images."""
  section = html.Section("looks", intro=(
      "Attributions for a few test images (one per class first), then what single layers "
      "and units respond to."))
  names, model, variables = run.class_names, run.model, run.variables
  explained = compute.explain_batch(model, variables, batch.images, len(names), cam_layer,
                                    feature_layers, seed=run.config.seed)
  images = to_rgb(batch.images)
  n = min(_SHOWN, len(images))
  top_classes, top_cams = explained.top(4)
  classes, cams, probabilities = explained.classes, explained.cams, explained.probabilities
  figs = section.figures
  figs.append(explain_figures.top_class_cams(images[:n], probabilities, top_classes[:n],
                                             top_cams[:n], names, batch.labels, directory,
                                             explained.layer))
  figs.append(explain_figures.all_class_grid(images[:n], classes[:n], cams[:n], probabilities,
                                             names, directory))
  figs.append(explain_figures.all_class_gif(images[0], classes[0], cams[0], probabilities[0],
                                            names, directory, int(batch.labels[0])))
  figs.append(explain_figures.guided_grad_cam(images[:n], cams[:n, 0], explained.guided[:n],
                                              explained.guided_grad_cam[:n], classes[:n, 0],
                                              names, directory))
  figs.append(gradient_figures.guided_and_deconv(images[:n], explained.guided[:n],
                                                 explained.deconv[:n], classes[:n, 0], names,
                                                 directory))
  figs.append(gradient_figures.per_class(images[0], explained.per_class_classes,
                                         explained.guided_per_class, explained.deconv_per_class,
                                         probabilities[0], names, directory))
  if methods:
    more = report_images.method_maps(model, variables, batch.images[:n], explained.layer,
                                     classes[:n, 0], methods)
    figs.append(report_images.methods_figure(images[:n], more, classes[:n, 0], names,
                                             directory, explained.layer))
  field = None
  try:  # analytic receptive field; some layers (after a global pool) have none
    field = explain.receptive_field(model, explained.layer, variables,
                                   input_shape=(1, *batch.images.shape[1:]))
  except ValueError as err:
    section.notes.append(f"No receptive field for {explained.layer}: {err}")
  figs.append(gradient_figures.neuron(images, explained.neuron, explained.guided_neuron,
                                      explained.layer, directory, field))
  figs.append(inside_figures.feature_maps(images[0], explained.feature_maps, directory))
  first = taps.layer_names(model, variables, batch.images[:1])[0]
  kernels = np.asarray(explain.filters(model, variables, batch.images[:1], first))
  figs.append(inside_figures.first_layer_filters(kernels, first, directory))
  if field is not None:
    figs.append(inside_figures.receptive_field_outlines(images, explained.layer_activations,
                                                        field, explained.layer, directory))
  if quick:
    section.notes.append("Max-activating patches and activation maximization skipped (quick).")
  else:
    figs.extend(unit_figures(run, explained, pool, to_rgb, directory))
  return section, explained


def unit_figures(run: trained_run.Run, explained, pool: samples.Examples, to_rgb,
                 directory: epath.Path) -> list[display.Figure]:
  """Max-activating test patches and activation maximization for the CAM layer's channels
  that fire most on the batch (fewer channels on large inputs: optimization costs)."""
  size = pool.images.shape[1]
  channels = np.argsort(-explained.layer_activations.mean((0, 1, 2)), kind="stable")
  found = explain.max_activating_patches(run.model, run.variables, pool.images[:_PATCH_IMAGES],
                                         explained.layer, channels[:6], k=6, batch_size=128)
  figures = [inside_figures.max_activating_patches(
      to_rgb(np.asarray(found.images)), np.asarray(found.inside), np.asarray(found.activations),
      channels[:6], explained.layer, directory)]
  chosen = channels[:8 if size <= 64 else 4]
  vis = explain.activation_maximization(run.model, run.variables, explained.layer, chosen,
                                        size=size, steps=128, seed=run.config.seed,
                                        preprocess=samples.normalizer(run.data_config))
  figures.append(inside_figures.activation_maximization(
      np.asarray(vis.images), chosen, np.asarray(vis.objective), explained.layer, directory))
  return figures


def print_workdir_report(workdir, output=None, **options) -> None:
  """What both report commands do for a workdir (python -m cnnviz_jax.report --workdir W and
  python -m cnnviz_jax.main --mode=report): workdir_report, then `report: PATH`."""
  print(f"report: {workdir_report(workdir, output, **options)}")


def workdir_report(workdir, output=None, *, num_images: int = 8, cam_layer: str | None = None,
                   feature_layers: list[str] | None = None, quick: bool = False,
                   methods: Sequence[str] = ()) -> epath.Path:
  """Writes the report of `workdir` (default W/report.html) and returns its path.

  methods: more explainers for the looks section, by their explain-images names
  (report/images.py METHODS, e.g. "layer_conductance"), in one figure.

  quick: skip what costs most to compile or run on a CPU (max-activating patches,
  activation maximization, the faithfulness checks), explained.g. for large models.
  """
  methods = report_images.check_methods(methods) if methods else []
  timer = _Timer()
  run = trained_run.load_run(workdir)
  directory = run.workdir.figures
  output = storage.path(output) if output else run.workdir.report_html
  cfg = run.data_config
  to_rgb = lambda x: display.to_display(x, cfg["normalization"], cfg["mean"], cfg["std"])
  apply = jax.jit(lambda v, x: jax.nn.softmax(run.model.apply(v, x, train=False), -1))
  predict = lambda x: apply(run.variables, x)
  timer.mark("load")
  sections = [data_section(run, to_rgb, directory)]
  timer.mark("data")
  sections.append(training_section(run, directory))
  split = _eval_split(run)
  pool, probabilities = samples.predict_split(cfg, split, predict)
  sections.append(results_section(run, to_rgb, pool, probabilities, directory))
  timer.mark("results")
  batch = samples.examples(cfg, split, num_images)
  looks, explained = looks_section(run, batch, pool, to_rgb, directory, cam_layer,
                                   feature_layers, quick, methods)
  sections.append(looks)
  sections.extend(mask_figures.section(run, to_rgb, directory, split,
                                       explained.layer))  # where the data has object masks
  timer.mark("explanations")
  if quick:
    sections.append(html.Section("faithful", notes=["Faithfulness checks skipped (quick)."]))
  else:
    sections.append(faithful.faithful_section(run.model, run.variables, batch, explained, to_rgb,
                                              directory, run.config.seed))
  timer.mark("faithfulness")
  figures = [f for s in sections for f in s.figures]
  index = [{"name": f.name, "title": f.title, "caption": f.caption, "file": f.path.name,
            "section": s.key, "texts": f.axes_texts} for s in sections for f in s.figures]
  run.workdir.write_json(directory / "index.json", index)
  accuracy = ""
  if run.results and split in run.results["splits"]:
    accuracy = f", {split} accuracy {run.results['splits'][split]['accuracy']:.2%}"
  page = html.render(
      f"{run.config.model.name} on {cfg['name']}", sections,
      subtitle=f"{run.workdir} — {run.status()}{accuracy}",
      partial=run.status() if run.partial else None, config=run.config.to_dict(),
      extra_footer=f"Model variables from {run.checkpoint}. Timings (s): " +
      ", ".join(f"{k} {v:.1f}" for k, v in timer.marks.items()))
  html.write(output, page)
  logging.debug("report: %s (%d figures; %s)", output, len(figures),  # the commands print it
                ", ".join(f"{k} {v:.1f}s" for k, v in timer.marks.items()))
  return output

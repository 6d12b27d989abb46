"""Evaluation: every example of a split once, summed over the batches of every process.

One home for the loop's per-epoch validation, its final results.json, and
`python -m cnnviz_jax.main --mode=evaluate`, which evaluates a trained workdir (its best,
latest or any saved step) on its own splits or on another data config with the same
classes, and writes W/eval/NAME.json in results.json's schema.
"""
import logging

import jax
import ml_collections
import numpy as np

from cnnviz_jax import models
from cnnviz_jax.data import layout, pipeline, splits as splits_lib
from cnnviz_jax.train import checkpoint, from_config, inputs, mesh as mesh_lib, results
from cnnviz_jax.train import steps as steps_lib
from cnnviz_jax.train.workdir import Workdir, WorkdirError


def evaluate(eval_step, variables, batches) -> tuple[dict, np.ndarray, np.ndarray]:
  """(mean loss / accuracy / top-5, labels, logits) over every example once (host, unpadded)."""
  totals, labels, logits = None, [], []
  for batch in batches:
    sums, out = eval_step(variables, batch)
    sums = inputs.replicated_to_host(sums)
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    keep = np.asarray(inputs.to_host(batch["valid"])) > 0
    labels.append(np.asarray(inputs.to_host(batch["label"]))[keep])
    logits.append(np.asarray(inputs.to_host(out))[keep])
  count = max(float(totals["count"]), 1.0)
  summary = {"loss": float(totals["loss_sum"]) / count,
             "accuracy": float(totals["correct"]) / count,
             "top5_accuracy": float(totals["correct_top5"]) / count}
  return summary, np.concatenate(labels), np.concatenate(logits)


def results_record(eval_step, variables, split_batches: dict, class_names, model_name: str,
                   num_steps: int) -> dict:
  """results.json's schema: {model, class_names, num_steps, splits: {split: metrics}}.
  split_batches: {split: a callable returning that split's batches}."""
  out = {"model": model_name, "class_names": list(class_names), "num_steps": num_steps,
         "splits": {}}
  for split, batches in split_batches.items():
    summary, labels, logits = evaluate(eval_step, variables, batches())
    out["splits"][split] = {**results.split_results(labels, logits, class_names),
                            "loss": summary["loss"]}
  return out


def _checkpoint_choice(which: str) -> str | int:
  if which in ("best", "latest"):
    return which
  if which.isdigit():
    return int(which)
  raise WorkdirError(f"--checkpoint must be best, latest or a step number; got {which!r}")


def evaluate_workdir(path, data_from: ml_collections.ConfigDict | None = None,
                     which: str = "best", splits=None, name: str | None = None
                     ) -> tuple[str, dict]:
  """Evaluates the trained workdir at `path`; -> (where the record was written, record).

  data_from: a config whose data section (and eval_splits) replaces the run's own, e.g.
  the same classes from an image folder. splits: default the config's eval_splits.
  """
  workdir = Workdir(path).check()
  trained = workdir.config()
  config = ml_collections.ConfigDict(trained.to_dict())
  if data_from is not None:
    config.data, config.eval_splits = data_from.data, data_from.eval_splits
  data_cfg = from_config.data_config(config)
  mesh = mesh_lib.make_mesh()
  sharding = layout.batch_sharding(mesh)
  splits = tuple(splits or config.eval_splits)
  for split in splits:  # named before any data is read
    splits_lib.split_index(split)
  iterators = {s: pipeline.eval_iterator(data_cfg, split=s, sharding=sharding) for s in splits}
  class_names = list(next(iter(iterators.values())).class_names)
  trained_names = from_config.class_names(trained, workdir.results())
  if sorted(trained_names) != sorted(class_names):
    raise WorkdirError(f"the data's classes {class_names} are not the ones {workdir} was "
                       f"trained on: {trained_names}")
  logit_order = np.asarray([trained_names.index(n) for n in class_names])  # by name
  model = from_config.model(trained, len(class_names))
  example = jax.ShapeDtypeStruct((1, *iterators[splits[0]].image_shape), np.float32)
  abstract = models.abstract_variables(model, example)
  variables, where, step = checkpoint.saved_variables(workdir, _checkpoint_choice(which),
                                                      abstract)
  variables = jax.device_put(jax.device_get(variables), mesh_lib.replicated(mesh))
  eval_step = jax.jit(steps_lib.make_eval_step(model, logit_order=logit_order),
                      in_shardings=(mesh_lib.replicated(mesh), sharding))
  record = results_record(eval_step, variables, {s: iterators[s].__iter__ for s in splits},
                          class_names, trained.model.name, step)
  record.update(checkpoint=f"{where}/{step}", data=data_cfg["name"])
  name = name or f"{data_cfg['name']}_{where}_{step}"
  workdir.write_json(workdir.eval_json(name), record)
  logging.debug("evaluated %s (%s/%d) on %s: %s", workdir, where, step, data_cfg["name"],
                {s: r["accuracy"] for s, r in record["splits"].items()})  # main prints it
  return str(workdir.eval_json(name)), record

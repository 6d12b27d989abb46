"""The right-reasons table: a sweep's accuracies plus what each model looks at.

Per finished trial (cached in W/trial_NNN/right_reasons.json): the test accuracy on the
decoy-free twin (train/evaluate.py's evaluate_workdir, W/trial_NNN/eval/decoy_free_test.json),
Grad-CAM's mass in the object mask and the input-gradient energy's share on the patch, on
the decoy test images. W/right_reasons.md and .csv hold one row per trial.
"""
import logging

import jax
import ml_collections
import numpy as np

from cnnviz_jax import explain, models
from cnnviz_jax.data import pipeline
from cnnviz_jax.report import mask_figures, trained_run
from cnnviz_jax.train import evaluate, from_config
from cnnviz_jax.train.workdir import Workdir
from experiments import sweep_table

DECOY_FIELDS = {"shapes": "shapes", "decoy_digits": "digits"}  # dataset -> its decoy's fields
DECOY_SIDE = 4  # the decoy measured for a decoy-free trial: Ross et al.'s 4×4
COLUMNS = ("val_accuracy", "test_accuracy", "test_no_patch", "gradcam_in_mask",
           "gradient_in_patch", "wall_s")
CACHE = "right_reasons.json"


def with_decoy(config: ml_collections.ConfigDict, side: int) -> ml_collections.ConfigDict:
  """A copy of `config` whose data carries a decoy of `side` pixels (0: the twin without)."""
  out = ml_collections.ConfigDict(config.to_dict())
  out.data[DECOY_FIELDS[out.data.name]].decoy = side
  return out


def _test_arrays(data_cfg: dict) -> dict:
  """Every test example's image, label and masks as host arrays (padding dropped)."""
  parts = []
  for batch in pipeline.eval_iterator(data_cfg, split="test"):
    keep = np.asarray(batch["valid"]) > 0
    parts.append({k: np.asarray(v)[keep] for k, v in batch.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _gradient_in_patch(model, variables, images, patches, batch: int = 128) -> float:
  """Mean share of the predicted logit's input-gradient energy on the patch."""
  share = jax.jit(lambda x, m: explain.mass_inside(
      jax.numpy.sum(jax.numpy.square(explain.gradient(model, variables, x)), -1), m))
  return float(np.mean(np.concatenate([np.asarray(share(images[i:i + batch],
                                                        patches[i:i + batch]))
                                       for i in range(0, len(images), batch)])))


def measure(trial_dir) -> dict:
  """{test_no_patch, gradcam_in_mask (None without a spatial layer), gradient_in_patch}."""
  run = trained_run.load_run(trial_dir)
  _, twin = evaluate.evaluate_workdir(trial_dir, with_decoy(run.config, 0), splits=("test",),
                                      name="decoy_free_test")
  side = run.config.data[DECOY_FIELDS[run.config.data.name]].decoy or DECOY_SIDE
  decoy_config = with_decoy(run.config, side)
  test = _test_arrays(from_config.data_config(decoy_config))
  layers = models.layer_names(run.model, run.variables, test["image"][:1])
  inside = None
  if layers:
    _, cover, _ = mask_figures.measure(run.model, run.variables, test["image"],
                                       test["object_mask"], layers[-1])
    inside = float(cover.mean())
  return {"test_no_patch": twin["splits"]["test"]["accuracy"], "gradcam_in_mask": inside,
          "gradient_in_patch": _gradient_in_patch(run.model, run.variables, test["image"],
                                                  test["ignore_mask"])}


def write(workdir, trials: list[dict], table: list[dict]) -> None:
  """sweep.main's finish: measures the finished trials not measured yet, writes the table."""
  del trials  # the table's rows name them
  rows = []
  for row in table:
    trial = Workdir(workdir / row["trial"])
    extra = trial.read_json(trial.path / CACHE) if row["status"] in ("finished",
                                                                     "skipped") else {}
    if extra is None:
      logging.info("%s: measuring test without the patch and the explanations", row["trial"])
      extra = measure(trial.path)
      trial.write_json(trial.path / CACHE, extra)
    keys = list(row)
    parameters = keys[keys.index("trial") + 1:keys.index("status")]
    rows.append({"id": row["id"], "trial": row["trial"], **{k: row[k] for k in parameters},
                 "status": row["status"], **{k: row.get(k, extra.get(k)) for k in COLUMNS}})
  sweep_table.write_csv(rows, workdir / "right_reasons.csv")
  sweep_table.write_markdown(rows, workdir / "right_reasons.md", "test_accuracy",
                             f"Right for the right reasons: {workdir.name}")
  print(f"right reasons: {workdir / 'right_reasons.md'}")

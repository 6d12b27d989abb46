"""The sweep's results table: one row per trial from its results.json, as CSV and markdown."""
import csv
import functools
import io
import math
from collections.abc import Collection, Sequence

from etils import epath

from cnnviz_jax.report import display
from cnnviz_jax.train.workdir import Workdir

SPLITS = {"train": "train", "validation": "val", "test": "test"}  # results.json split -> prefix
METRICS = tuple(f"{prefix}_{m}" for prefix in SPLITS.values() for m in ("accuracy", "loss"))


def status(trial: Workdir, results: dict | None, record: dict,
           skipped: Collection[str] = ()) -> str:
  """finished | skipped (finished before this run) | failed | incomplete | not started, from
  the trial's results.json and sweep_trial.json (`results`, `record`)."""
  if results is not None:
    return "skipped" if trial.path.name in skipped else "finished"
  if record.get("returncode"):
    return "failed"
  return "incomplete" if trial.path.exists() else "not started"


def rows(workdir: epath.Path, trials: Sequence[dict],
         skipped: Collection[str] = ()) -> list[dict]:
  """{id, trial, <parameters>, status, train/val/test accuracy and loss, wall_s} per trial;
  numbers are those of results.json (None where missing), and so is a parameter that a
  trial does not set (a study's unpenalized variants have no penalty weight)."""
  parameters = list(dict.fromkeys(p for t in trials for p in t["params"]))
  out = []
  for trial in trials:
    trial_workdir = Workdir(workdir / trial["name"])
    results = trial_workdir.results()
    record = trial_workdir.read_json(trial_workdir.sweep_trial_json, {})
    row = {"id": trial["id"], "trial": trial["name"],
           **{p: trial["params"].get(p) for p in parameters},
           "status": status(trial_workdir, results, record, skipped), **dict.fromkeys(METRICS),
           "wall_s": record.get("wall_seconds")}
    if results is not None:
      splits = results["splits"]
      for split, prefix in SPLITS.items():
        if split in splits:
          row[f"{prefix}_accuracy"] = splits[split]["accuracy"]
          row[f"{prefix}_loss"] = splits[split]["loss"]
    out.append(row)
  return out


def finished(table: Sequence[dict], metric: str) -> list[dict]:
  """The rows with a number for `metric` (not missing, not NaN)."""
  return [r for r in table if r[metric] is not None and not math.isnan(r[metric])]


def best(table: Sequence[dict], metric: str) -> dict | None:
  """The row with the best metric (highest accuracy, lowest loss), None if none finished."""
  done = finished(table, metric)
  if not done:
    return None
  key = (lambda r: -r[metric]) if metric.endswith("accuracy") else (lambda r: r[metric])
  return min(done, key=key)


def write_csv(table: Sequence[dict], path: epath.Path) -> None:
  """Full-precision numbers (Python's repr round-trips a float), empty cells where missing."""
  text = io.StringIO(newline="")
  writer = csv.DictWriter(text, fieldnames=list(table[0]))
  writer.writeheader()
  writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in table)
  path.write_text(text.getvalue())


def _cell(key: str, value) -> str:
  if value is None:
    return "–"
  if key == "wall_s":
    return f"{value:.1f}"
  if isinstance(value, float):
    return f"{value:.4f}"
  return short_value(value).replace("|", "\\|")


# A long value (e.g. a whole augment dict) cut for table cells and plot labels; the CSV and
# trials.json keep it whole.
short_value = functools.partial(display.short, width=28)


def short_name(parameter: str) -> str:
  """'config.stages[0].schedule.lr' -> 'stages[0].schedule.lr' (tables and plots)."""
  return parameter.removeprefix("config.")


def write_markdown(table: Sequence[dict], path: epath.Path, metric: str, title: str) -> None:
  """A markdown table (4 decimals) headed by the best trial on `metric`."""
  keys = list(table[0])
  lines = [f"# {title}", ""]
  top = best(table, metric)
  if top is not None:
    parameters = ", ".join(f"{short_name(k)}={short_value(top[k])}"
                           for k in keys[2:keys.index("status")])
    lines += [f"Best {metric}: **{top[metric]:.4f}**, {top['trial']} ({parameters}).", ""]
  lines.append("| " + " | ".join(short_name(k) for k in keys) + " |")
  lines.append("|" + "|".join("---" for _ in keys) + "|")
  lines += ["| " + " | ".join(_cell(k, r[k]) for k in keys) + " |" for r in table]
  path.write_text("\n".join(lines) + "\n")

r"""Grid or random search over config fields; every trial is one ordinary main command.

Run (from the repository root, as main):
  python -m experiments.sweep --config configs/demo.py --workdir workdir/sweep \
    --grid 'config.stages[0].schedule.lr=1e-3,3e-3' --grid 'config.model.head=dense128,dense256' \
    [--random 20 --seed 0 --grid 'config.stages[0].schedule.lr=loguniform:1e-4:1e-2'] \
    [--sweep experiments/sweeps/seed_000.py] [--parallel 2] [-- --config.data.batch_size=64]

Trial i trains in W/trial_00i with `python -m cnnviz_jax.main --config CONFIG[:VARIANT]
--workdir W/trial_00i --config.a=b … --noreport`; W/trials.json fixes the trials and their ids.
Run the same command again to resume: finished trials (results.json) are skipped, a killed
one resumes from its checkpoints. --print_commands lists the trials' commands for any
scheduler (then --table_only collects them). Writes W/results.csv, W/results.md,
W/accuracy.png, W/parallel_coordinates.png and W/parameter_importance.png.
"""
import concurrent.futures
import importlib.util
import os
import runpy
import subprocess
import sys
import tempfile
import time

from absl import app, flags, logging
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.train.workdir import Workdir
from experiments import space, sweep_plots, sweep_table, trials as trials_lib

flags.DEFINE_string("config", None, "Experiment config file; `path:variant` fixes a variant.")
flags.DEFINE_string("workdir", None, "Sweep directory: trials.json, trial_NNN/, table, figures.")
flags.DEFINE_multi_string("grid", [], "NAME=VALUES: a config field as main's flag names it "
                          "(config.model.head) or 'variant'; VALUES a,b,c or, with --random, "
                          "loguniform:LO:HI, uniform:LO:HI, int:LO:HI. Repeat per parameter.")
flags.DEFINE_integer("random", 0, "Random search: this many draws (0: the full grid).")
flags.DEFINE_integer("seed", 0, "Seed of the random search's draws.")
flags.DEFINE_string("sweep", None, "A sweep file (experiments/sweeps/*.py) whose get_sweep() "
                    "gives config, parameters, random, seed, metric; flags given win.")
flags.DEFINE_integer("parallel", 1, "Trials run as this many concurrent processes.")
flags.DEFINE_enum("metric", "val_accuracy", sweep_table.METRICS, "What the plots target.")
flags.DEFINE_bool("print_commands", False, "Print the trials' commands (one a line), run none.")
flags.DEFINE_bool("table_only", False, "Run no trial: write the table and figures of what the "
                  "trials' workdirs hold (after running the commands elsewhere).")
flags.DEFINE_bool("report", False, "Let every trial write its report.html (slow).")
flags.DEFINE_bool("wandb", False, "Also log every trial run now to Weights & Biases.")
flags.DEFINE_string("wandb_project", "cnnviz_jax", "The wandb project (with --wandb).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS
SWEEP_KEYS = ("config", "parameters", "random", "seed", "metric")


def _sweep_file(path: str) -> dict:
  if not os.path.isfile(path):
    raise app.UsageError(f"--sweep {path}: no such file")
  sweep = runpy.run_path(path)["get_sweep"]()
  unknown = sorted(set(sweep) - set(SWEEP_KEYS))
  if unknown:
    raise app.UsageError(f"{path}: unknown sweep key(s) {unknown}; valid: {', '.join(SWEEP_KEYS)}")
  return sweep


def _setting(name: str, sweep: dict):
  """A flag given on the command line wins over the sweep file, which wins over the default."""
  return FLAGS[name].value if FLAGS[name].present or name not in sweep else sweep[name]


def plan_from_flags(argv) -> tuple[str, list[str], list[dict], str]:
  """(config, fixed overrides, trials, metric) from the flags and the sweep file."""
  fixed = argv[1:]
  bad = [a for a in fixed if not a.startswith("--config.")]
  if bad:
    raise app.UsageError(f"after `--` only --config.FIELD=VALUE overrides pass to every trial; "
                         f"got {bad}")
  sweep = _sweep_file(FLAGS.sweep) if FLAGS.sweep else {}
  config = _setting("config", sweep)
  if not config:
    raise app.UsageError("--config (or a --sweep file with 'config') is required")
  try:
    parameters = {space.check_name(n): space.parse_values(n, v)
                  for n, v in sweep.get("parameters", {}).items()}
    parameters.update(space.parse_spec(s) for s in FLAGS.grid)
    if not parameters:
      raise ValueError("nothing to sweep: give --grid NAME=VALUES or a --sweep file")
    if space.VARIANT in parameters and ":" in config:
      raise ValueError(f"--config {config} fixes a variant; drop ':…' to sweep 'variant'")
    count = _setting("random", sweep)
    trials = (space.random(parameters, count, _setting("seed", sweep)) if count
              else space.grid(parameters))
    trials_lib.check(config, fixed, trials)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  metric = _setting("metric", sweep)
  if metric not in sweep_table.METRICS:
    raise app.UsageError(f"metric {metric!r}; valid: {', '.join(sweep_table.METRICS)}")
  return config, fixed, trials, metric


def _run_trial(argv: list[str], trial_dir: epath.Path, env: dict) -> int:
  """One trial, its output appended to trial_dir/sweep.log; its wall time adds up over
  resumed attempts in trial_dir/sweep_trial.json."""
  trial_dir.mkdir(parents=True, exist_ok=True)
  workdir = Workdir(trial_dir)
  record = workdir.read_json(workdir.sweep_trial_json, {"wall_seconds": 0.0})
  start = time.perf_counter()
  returncode = _run_logged(argv, trial_dir / "sweep.log", env)
  record.update(command=trials_lib.shell_line(argv), returncode=returncode,
                wall_seconds=record["wall_seconds"] + time.perf_counter() - start)
  workdir.write_json(workdir.sweep_trial_json, record)
  return returncode


def _run_logged(argv: list[str], log: epath.Path, env: dict) -> int:
  """Runs argv, its output appended to `log`. A cloud object cannot be appended to while the
  trial runs: at a URL the output goes to a local file first and is added when it ends."""
  if not storage.is_url(log):
    with open(log, "a") as f:
      return subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env,
                            check=False).returncode
  with tempfile.TemporaryFile() as f:
    returncode = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env,
                                check=False).returncode
    f.seek(0)
    log.write_bytes((log.read_bytes() if log.exists() else b"") + f.read())
  return returncode


def run_trials(jobs: list[tuple[dict, list[str]]], workdir: epath.Path, parallel: int) -> None:
  """Runs (trial, argv) jobs, `parallel` at a time. With parallel > 1 the first runs alone,
  so one process prepares the dataset (tfds download / generation) before the others read it."""
  env = dict(os.environ)
  if parallel > 1:  # concurrent processes on one GPU must not each preallocate most of it
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

  def run(job):
    trial, argv = job
    logging.info("%s: starting %s", trial["name"], trial["params"])
    code = _run_trial(argv, workdir / trial["name"], env)
    logging.log(logging.INFO if code == 0 else logging.ERROR, "%s: %s (see %s)", trial["name"],
                "done" if code == 0 else f"FAILED, exit {code}",
                workdir / trial["name"] / "sweep.log")

  if parallel > 1 and jobs:
    run(jobs[0])
    jobs = jobs[1:]
  with concurrent.futures.ThreadPoolExecutor(max(1, parallel)) as pool:
    list(pool.map(run, jobs))


def write_outputs(workdir: epath.Path, trials: list[dict], metric: str, skipped=()) -> list[dict]:
  """results.csv / .md and the figures of every trial in trials.json."""
  table = sweep_table.rows(workdir, trials, skipped)
  parameters = list(dict.fromkeys(p for t in trials for p in t["params"]))
  sweep_table.write_csv(table, workdir / "results.csv")
  sweep_table.write_markdown(table, workdir / "results.md", metric, f"Sweep {workdir.name}")
  sweep_plots.accuracy_bars(table, parameters, workdir / "accuracy.png")
  sweep_plots.parallel_coordinates(table, parameters, metric, workdir / "parallel_coordinates.png")
  sweep_plots.parameter_importance(table, parameters, metric, workdir / "parameter_importance.png")
  return table


def main(argv, plan=None, finish=None):
  """plan(argv) -> (config, fixed overrides, trials, metric): a study's own trials (default:
  the flags'); finish(workdir, trials, table): a study's own outputs after the table."""
  if FLAGS.wandb and importlib.util.find_spec("wandb") is None:
    raise app.UsageError("--wandb needs the wandb package (pip install wandb), which is not "
                         "installed; without --wandb the table and figures are written anyway")
  if FLAGS.parallel < 1:
    raise app.UsageError(f"--parallel must be ≥ 1; got {FLAGS.parallel}")
  config, fixed, planned, metric = (plan or plan_from_flags)(argv)
  try:
    workdir = storage.path(FLAGS.workdir)
  except storage.PathError as e:
    raise app.UsageError(f"--workdir: {e}") from e
  try:
    trials = trials_lib.merge(workdir, config, fixed, planned)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  jobs = [(t, trials_lib.command(config, t["params"], fixed, workdir / t["name"], FLAGS.report))
          for t in trials]
  if FLAGS.print_commands:
    print("\n".join(trials_lib.shell_line(argv) for _, argv in jobs))
    return
  skipped = {t["name"] for t in trials if Workdir(workdir / t["name"]).results_json.exists()}
  if not FLAGS.table_only:
    logging.info("%d trial(s), %d finished before: skipped", len(trials), len(skipped))
    run_trials([j for j in jobs if j[0]["name"] not in skipped], workdir, FLAGS.parallel)
  table = write_outputs(workdir, trials, metric, () if FLAGS.table_only else skipped)
  if finish is not None:
    finish(workdir, trials, table)
  if FLAGS.wandb:
    from experiments import wandb_log  # pylint: disable=import-outside-toplevel
    wandb_log.log_trials(workdir, trials, table, FLAGS.wandb_project, skipped)
  statuses = [r["status"] for r in table]
  counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
  print(f"trials: {', '.join(f'{n} {s}' for s, n in counts.items())}\n"
        f"results: {workdir / 'results.md'}")
  if counts.get("failed"):
    sys.exit(1)


def run_study(config: str, plan=None, finish=None) -> None:
  """A seed study: the sweep over every variant of `config` (its VARIANTS tuple); plan and
  finish: as main's (a study's own trials and outputs)."""
  FLAGS.set_default("config", config)
  FLAGS.set_default("grid", [f"{space.VARIANT}={','.join(trials_lib.variants(config))}"])
  app.run(lambda argv: main(argv, plan, finish))


if __name__ == "__main__":
  app.run(main)

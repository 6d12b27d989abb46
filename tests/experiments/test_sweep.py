"""The sweep runner end to end: a real 2×2 grid of tiny demo trials on the synthetic shapes,
its table against the trials' results.json, its figures, resuming, the printed commands,
early errors, and a study (the sweep over a config's VARIANTS)."""
import ast
import csv
import importlib.util
import itertools
import json
import os
import pathlib
import shlex
import subprocess

import pytest

import helpers
import runs

# Augmentation (seed 000 swept it) changes the input pipeline, not the compiled step: with the
# test run's compilation cache (tests/conftest.py), the 4 trials compile twice (once per LR),
# which keeps the test fast.
LRS = ("1e-3", "3e-3")
AUGMENTS = ("{'kind': None}", "{'kind': 'keras', 'rotation': 20.0, 'horizontal_flip': True}")
GRID = [f"config.stages[0].schedule.lr={','.join(LRS)}",
        f"config.data.augment={','.join(AUGMENTS)}"]
FIGURES = ("accuracy.png", "parallel_coordinates.png", "parameter_importance.png")
SPLITS = {"train": "train", "validation": "val", "test": "test"}


def tiny(data_dir) -> list[str]:
  """The train tests' TINY demo (256 images, 3 classes), one epoch."""
  return [f"--config.data.data_dir={data_dir}", *runs.tiny_flags(epochs=1)]


def sweep(workdir, data_dir, *flags, grid=GRID, config="configs/demo.py", python=None):
  return helpers.python(*(python or ["-m", "experiments.sweep", f"--config={config}"]),
                        f"--workdir={workdir}", *(f"--grid={g}" for g in grid), *flags,
                        "--", *tiny(data_dir))


def table(workdir: pathlib.Path) -> list[dict]:
  with (workdir / "results.csv").open() as f:
    return list(csv.DictReader(f))


def results(trial_dir: pathlib.Path) -> dict:
  return json.loads((trial_dir / "results.json").read_text())["splits"]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory, data_dir):
  """The 2×2 grid (LR × head), two trials at a time."""
  workdir = tmp_path_factory.mktemp("sweep") / "grid"
  result = sweep(workdir, data_dir, "--parallel=2")
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-5000:]
  return workdir


@pytest.mark.slow  # its fixture runs the four-trial sweep
def test_grid_table_equals_every_trials_results_json(grid_sweep):
  trials = json.loads((grid_sweep / "trials.json").read_text())["trials"]
  expected = [{"config.stages[0].schedule.lr": lr, "config.data.augment": augment}
              for lr, augment in itertools.product(LRS, AUGMENTS)]
  assert [t["params"] for t in trials] == expected
  rows = table(grid_sweep)
  markdown = (grid_sweep / "results.md").read_text()
  assert [r["trial"] for r in rows] == [f"trial_{i:03d}" for i in range(4)]
  for row, params in zip(rows, expected):
    trial_dir = grid_sweep / row["trial"]
    # The overrides reached main: its own config.json says so.
    config = json.loads((trial_dir / "config.json").read_text())
    assert config["stages"][0]["schedule"]["lr"] == float(params["config.stages[0].schedule.lr"])
    assert config["data"]["augment"] == ast.literal_eval(params["config.data.augment"])
    assert config["stages"][0]["epochs"] == 1 and config["data"]["shapes"]["num_classes"] == 3
    assert {k: row[k] for k in params} == params
    assert row["status"] == "finished" and float(row["wall_s"]) > 0
    markdown_row = next(line for line in markdown.splitlines() if f"| {row['trial']} |" in line)
    for split, prefix in SPLITS.items():
      for name in ("accuracy", "loss"):
        value = results(trial_dir)[split][name]
        assert float(row[f"{prefix}_{name}"]) == value  # exactly: the CSV keeps every digit
        assert f"| {value:.4f} |" in markdown_row
  best = max(rows, key=lambda r: float(r["val_accuracy"]))
  assert f"Best val_accuracy: **{float(best['val_accuracy']):.4f}**" in markdown


@pytest.mark.slow  # its fixture runs the sweep
@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_nonempty_pngs(grid_sweep, name):
  import matplotlib.image  # pylint: disable=import-outside-toplevel
  path = grid_sweep / name
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  pixels = matplotlib.image.imread(path)
  assert pixels.shape[0] > 200 and pixels.shape[1] > 300
  assert pixels[..., :3].std() > 0.05  # drawn on, not a blank canvas


@pytest.mark.slow
def test_rerun_skips_every_finished_trial(grid_sweep, data_dir):
  before = table(grid_sweep)
  stamps = {p: p.stat().st_mtime_ns for p in grid_sweep.glob("trial_*/*") if p.is_file()}
  result = sweep(grid_sweep, data_dir, "--parallel=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "trials: 4 skipped" in result.stdout
  # No trial process ran: none of their files (results, logs, checkpoints' notes) moved.
  assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
  after = table(grid_sweep)
  assert [r["status"] for r in after] == ["skipped"] * 4
  drop = lambda rows: [{k: v for k, v in r.items() if k != "status"} for r in rows]  # noqa: E731
  assert drop(after) == drop(before)


@pytest.mark.slow
def test_printed_commands_run_as_is_and_match_the_parallel_run(grid_sweep, data_dir, tmp_path):
  workdir = tmp_path / "scheduled"
  result = sweep(workdir, data_dir, "--print_commands")
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 4 and not list(workdir.glob("trial_*"))  # printed, none run
  for i, line in enumerate(lines):
    argv = shlex.split(line)
    assert argv[1:3] == ["-m", "cnnviz_jax.main"] and f"--workdir={workdir}/trial_{i:03d}" in argv
  # A scheduler runs line i as it is; here the last one, sequentially (the grid ran 2 at once).
  ran = subprocess.run(lines[3], shell=True, cwd=helpers.ROOT, capture_output=True, text=True,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"), check=False)
  assert ran.returncode == 0, ran.stderr[-3000:]
  assert results(workdir / "trial_003") == results(grid_sweep / "trial_003")  # deterministic
  collected = sweep(workdir, data_dir, "--table_only")
  assert collected.returncode == 0, collected.stderr[-3000:]
  rows = table(workdir)
  assert [r["status"] for r in rows] == ["not started"] * 3 + ["finished"]
  assert float(rows[3]["test_accuracy"]) == results(workdir / "trial_003")["test"]["accuracy"]


@pytest.mark.slow
def test_unknown_config_field_fails_before_any_trial(tmp_path, data_dir):
  workdir = tmp_path / "bad"
  result = sweep(workdir, data_dir, grid=[GRID[0], "config.model.no_such_field=1,2"])
  assert result.returncode != 0
  assert "config.model.no_such_field" in result.stderr
  assert not workdir.exists()  # not even trials.json


@pytest.mark.slow
def test_study_is_the_sweep_over_every_variant(tmp_path, data_dir):
  """run_study plans one trial per VARIANTS entry (`--config path:variant`); the rest is the
  sweep the grid test runs, so this one runs no trial."""
  config = tmp_path / "two_variants.py"
  config.write_text(
      "from configs import demo\n"
      "VARIANTS = ('slow', 'fast')\n"
      "def get_config(variant=''):\n"
      "  config = demo.get_config()\n"
      "  config.stages[0].schedule.lr = {'slow': 1e-3, 'fast': 1e-2}[variant or 'slow']\n"
      "  return config\n")
  workdir = tmp_path / "study"
  python = ["-c", f"from experiments import sweep; sweep.run_study({str(config)!r})"]
  printed = sweep(workdir, data_dir, "--print_commands", grid=[], python=python)
  assert printed.returncode == 0, printed.stderr[-5000:]
  lines = printed.stdout.strip().splitlines()
  assert [shlex.split(line)[3] for line in lines] == [f"--config={config}:slow",
                                                      f"--config={config}:fast"]
  assert json.loads((workdir / "trials.json").read_text())["trials"][1]["params"] == {
      "variant": "fast"}


@pytest.mark.slow
def test_wandb_without_the_package_is_a_clear_error(tmp_path, data_dir):
  if importlib.util.find_spec("wandb") is not None:
    pytest.skip("wandb is installed here")
  result = sweep(tmp_path / "w", data_dir, "--wandb")
  assert result.returncode != 0 and "pip install wandb" in result.stderr
  assert not (tmp_path / "w").exists()

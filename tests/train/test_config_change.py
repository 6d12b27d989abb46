"""A training run over an existing workdir with another config (train/config_change.py): refused
before anything is written, or allowed, recorded and trained with from the resumed step on;
a free field passes."""
import hashlib
import json
import shutil

import numpy as np
import pytest

import runs
from cnnviz_jax.report import build
from cnnviz_jax.report import trained_run
from cnnviz_jax.train import config_change, loop

STEPS_PER_EPOCH = 256 // 32  # runs.tiny_config: 256 training images, batch 32


def _config(data_dir, epochs: int = 1, lr: float = 0.003):
  config = runs.tiny_config(data_dir, epochs=epochs)
  config.stages[0].schedule.update(name="constant", lr=lr)  # the applied lr is `lr` itself
  return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  workdir = tmp_path_factory.mktemp("trained")
  loop.train_and_evaluate(_config(data_dir), workdir)
  return workdir


def _files(workdir) -> dict[str, str]:
  """Every file under the workdir, by relative name: its bytes' hash."""
  return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_differences_name_each_field_old_and_new_in_field_order():
  old = {"seed": 0, "eval_splits": ["train", "test"], "gone": 1, "nan": float("nan"),
         "stages": [{"epochs": 1, "schedule": {"lr": 0.003, "name": "constant"}}]}
  new = {"seed": 0, "eval_splits": ["test"], "added": "x", "nan": float("nan"),
         "stages": [{"epochs": 2, "schedule": {"lr": 0.01, "name": "constant"}},
                    {"epochs": 3}]}
  assert [config_change.describe(c) for c in config_change.differences(old, new)] == [
      "config.added: (absent) -> 'x'",
      "config.eval_splits: ['train', 'test'] -> ['test']",
      "config.gone: 1 -> (absent)",
      "config.stages[0].epochs: 1 -> 2",
      "config.stages[0].schedule.lr: 0.003 -> 0.01",
      "config.stages[1]: (absent) -> {'epochs': 3}"]
  assert [config_change.is_free(f) for f in ("config.eval_splits", "config.checkpoint_keep",
                                             "config.checkpoint_keep_x", "config.seed")] == [
      True, True, False, False]


def test_a_changed_config_is_refused_and_nothing_is_written(trained, data_dir):
  before = _files(trained)
  config = _config(data_dir, lr=0.01)
  config.seed = 1
  with pytest.raises(config_change.ConfigChangedError) as refused:
    loop.train_and_evaluate(config, trained)
  message = str(refused.value).splitlines()
  assert message[1:3] == ["  config.seed: 0 -> 1", "  config.stages[0].schedule.lr: 0.003 -> 0.01"]
  assert "--config_change=allow" in message[3] and len(message) == 4
  assert _files(trained) == before  # the same names and bytes: no lock, events or config left


def test_a_free_field_passes_and_config_json_takes_it(trained, data_dir, tmp_path):
  workdir = tmp_path / "W"
  shutil.copytree(trained, workdir)
  config = _config(data_dir)
  config.checkpoint_keep = 3
  loop.train_and_evaluate(config, workdir)
  assert json.loads((workdir / "config.json").read_text())["checkpoint_keep"] == 3
  assert not (workdir / "config_changes.json").exists()


def test_an_allowed_change_is_recorded_and_trained_with_from_its_step(trained, data_dir,
                                                                      tmp_path):
  workdir = tmp_path / "W"
  shutil.copytree(trained, workdir)
  loop.train_and_evaluate(_config(data_dir, epochs=2, lr=0.01), workdir, config_change="allow")
  assert json.loads((workdir / "config_changes.json").read_text()) == [
      {"step": STEPS_PER_EPOCH, "changes": [
          {"field": "config.stages[0].epochs", "old": 1, "new": 2},
          {"field": "config.stages[0].schedule.lr", "old": 0.003, "new": 0.01}]}]
  assert json.loads((workdir / "config.json").read_text())["stages"][0]["schedule"]["lr"] == 0.01
  # the optimizer's applied lr: the old one up to the change's step, the new one after it
  assert [(h["step"], h["lr"]) for h in runs.history(workdir)] == [
      (STEPS_PER_EPOCH, float(np.float32(0.003))), (2 * STEPS_PER_EPOCH, float(np.float32(0.01)))]
  # the report's training section lists the change, and only where there is one
  section = build.training_section(trained_run.load_run(workdir), tmp_path / "figures")
  assert ("<tr><td>8</td><td>config.stages[0].schedule.lr</td><td>0.003</td><td>0.01</td></tr>"
          in "".join(section.html))
  unchanged = build.training_section(trained_run.load_run(trained), tmp_path / "figures")
  assert unchanged.html == []


def test_the_command_line_refuses_a_changed_config_with_exit_2(trained, data_dir):
  refused = runs.run_main(trained, data_dir, "--config.stages[0].epochs=1",
                          "--config.stages[0].schedule.name=constant",
                          "--config.stages[0].schedule.lr=0.01")
  assert refused.returncode == 2, refused.stderr[-3000:]
  lines = refused.stderr.splitlines()
  start = lines.index(f"error: {trained} was trained with another config "
                      f"({trained}/config.json); this run changes:")
  assert lines[start + 1:start + 3] == [  # the one field that differs: flags and in-process agree
      "  config.stages[0].schedule.lr: 0.003 -> 0.01",
      "Train in a new --workdir, or continue this one with the new config from its latest "
      f"checkpoint with --config_change=allow (recorded in {trained}/config_changes.json)."]

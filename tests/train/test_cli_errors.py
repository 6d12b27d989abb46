"""Bad input to the command lines: one `error: …` line on stderr, exit 2, no traceback (that is
for bugs, or for --verbosity=1)."""
import json
import shutil

import pytest
from PIL import Image

import helpers
import runs
from cnnviz_jax.train import loop

MAIN, REPORT = "cnnviz_jax.main", "cnnviz_jax.report"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  """A one-epoch tiny run, and a copy of it whose config.json names another head."""
  workdir = tmp_path_factory.mktemp("trained")
  loop.train_and_evaluate(runs.tiny_config(data_dir, epochs=1), workdir)
  foreign = tmp_path_factory.mktemp("foreign") / "w"
  shutil.copytree(workdir, foreign)
  config = json.loads((foreign / "config.json").read_text())
  config["model"]["head"] = "dense128"
  (foreign / "config.json").write_text(json.dumps(config))
  return workdir, foreign


def _train(workdir, data_dir, *extra):
  """`main` as runs.run_main calls it (the tiny config; --noreport), as a command line."""
  return [MAIN, "--config", helpers.ROOT / "configs/demo.py", f"--workdir={workdir}",
          f"--config.data.data_dir={data_dir}", "--noreport", *runs.TINY, *extra]


def _cases(tmp_path, data_dir, trained):
  workdir, foreign = trained
  bomb = tmp_path / "bomb.png"
  Image.new("1", (20_000, 20_000)).save(bomb)  # 400 M pixels in a few KB
  new = tmp_path / "new"
  return {
      "config validation": (_train(new, data_dir, "--config.data.batch_size=-1"),
                            "batch_size must be a positive int; got -1"),
      "a field the config lacks": (
          _train(new, data_dir, "--config.data.batch_sise=3"),
          "--config.data.batch_sise: the config has no field 'batch_sise'; did you mean "
          "'batch_size'?"),
      "a flag's bad value": (_train(new, data_dir, "--config.data.batch_size=abc"),
                             "flag --config.data.batch_size=abc: invalid literal"),
      "missing weights": (_train(new, data_dir, f"--config.weights={tmp_path / 'none'}"),
                          f"{tmp_path / 'none'} is not a converted-weights directory"),
      "an unreadable data folder": (
          _train(new, data_dir, "--config.data.name=folder",
                 f"--config.data.root={tmp_path / 'photos'}"),
          f"image folder '{tmp_path / 'photos'}' does not exist or is not a directory"),
      "not a workdir": ([MAIN, "--mode=evaluate", f"--workdir={tmp_path / 'nothing'}"],
                        f"workdir {tmp_path / 'nothing'} does not exist"),
      "bad split names": ([MAIN, "--mode=evaluate", f"--workdir={workdir}", "--splits=tset"],
                          "unknown split 'tset'; valid: train, validation, test"),
      "a foreign checkpoint": ([MAIN, "--mode=evaluate", f"--workdir={foreign}"],
                               "does not fit this model/config"),
      "a changed config": (_train(workdir, data_dir, "--config.stages[0].epochs=1",
                                  "--config.stages[0].schedule.lr=0.01"),
                           "config.stages[0].schedule.lr: 0.003 -> 0.01"),
      "a decompression bomb": ([REPORT, f"--workdir={workdir}", f"--images={bomb}"],
                               f"cannot read image {bomb}: over PIL's limit of 178,956,970"),
  }


@pytest.mark.slow  # ten command lines, most of them past TensorFlow's import
def test_user_errors_are_one_line_and_exit_2(tmp_path, data_dir, trained):
  changed_before = (trained[0] / "config.json").read_bytes()
  failures = []
  for name, (command, message) in _cases(tmp_path, data_dir, trained).items():
    result = helpers.python("-m", *command)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    said = result.stderr[result.stderr.find("error: "):]  # a changed config: a line a field
    if (result.returncode, len(errors)) != (2, 1) or message not in said \
        or "Traceback" in result.stderr:
      failures.append(f"{name}: exit {result.returncode}, stderr ends:\n"
                      f"{result.stderr[-1500:]}")
  assert not failures, "\n\n".join(failures)
  assert not (tmp_path / "new").exists()  # refused before any work
  assert (trained[0] / "config.json").read_bytes() == changed_before


def test_verbosity_1_adds_the_traceback_for_debugging(tmp_path, data_dir):
  result = helpers.python("-m", *_train(tmp_path / "w", data_dir, "--config.stages[0].epochs=0",
                                        "--verbosity=1"))
  assert result.returncode == 2
  assert "Traceback" in result.stderr
  assert "error: config.stages[0].epochs must be a positive int; got 0" in result.stderr

"""The training loop end to end on a tiny shapes dataset: workdir, stages, freezing, errors."""
import contextlib
import io
import json
import pathlib
import re
import shutil

import jax
import numpy as np
import pytest

import runs
from cnnviz_jax.data import datasets
from cnnviz_jax.train import evaluate, from_config, loop
from cnnviz_jax.train.workdir import WorkdirError


def _params_at(directory: pathlib.Path):
  return runs.final_state(directory.parent, directory.name)["params"]


def _four_classes(data_dir):
  config = runs.tiny_config(data_dir)
  config.data.shapes.num_classes = 4  # circle, square, triangle, cross: not sorted by name
  return config


@pytest.fixture(scope="module")
def trained_as_a_library(tmp_path_factory, data_dir):
  """(workdir, results, stderr) of a run trained as a notebook or a script trains it: the
  library called, no command configuring the console."""
  workdir = tmp_path_factory.mktemp("run")
  with contextlib.redirect_stderr(io.StringIO()) as stderr:
    results = loop.train_and_evaluate(_four_classes(data_dir), workdir)
  return workdir, results, stderr.getvalue()


@pytest.fixture(scope="module")
def finished_run(trained_as_a_library):
  return trained_as_a_library[:2]


@pytest.mark.slow
def test_workdir_has_results_history_events_config_and_checkpoints(finished_run):
  workdir, out = finished_run
  results = json.loads((workdir / "results.json").read_text())
  assert results == json.loads(json.dumps(out))
  assert set(results["splits"]) == {"train", "validation", "test"}
  assert len(results["class_names"]) == 4
  for split, expected in (("train", 256), ("validation", 64), ("test", 64)):
    r = results["splits"][split]
    confusion = np.asarray(r["confusion_matrix"])
    assert confusion.sum() == r["num_examples"] == expected
    np.testing.assert_allclose(np.trace(confusion) / expected, r["accuracy"])
    for i, name in enumerate(results["class_names"]):
      recall = confusion[i, i] / max(confusion[i].sum(), 1)
      np.testing.assert_allclose(r["per_class"][name]["recall"], recall)
  history = json.loads((workdir / "history.json").read_text())
  assert [h["epoch"] for h in history] == [0, 1, 2]
  assert {"lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(history[0])
  assert history[-1]["train_loss"] < history[0]["train_loss"]
  assert list(workdir.glob("events.out.tfevents.*"))
  assert json.loads((workdir / "config.json").read_text())["model"]["name"] == "small_cnn_bn"
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [16, 24]  # keep 2
  assert [p.name for p in (workdir / "best").iterdir()] != []


def test_training_as_a_library_shows_a_progress_bar(trained_as_a_library):
  """Outside our commands nothing configures logging, so the epoch lines (INFO) stay silent
  in a notebook: a tqdm.auto bar per stage shows the steps and each epoch's validation
  accuracy (a widget in Jupyter; text here, its last state after the last carriage return)."""
  workdir, _, stderr = trained_as_a_library
  history = runs.history(workdir)
  steps = history[-1]["step"]
  final = [line.rsplit("\r", 1)[-1] for line in stderr.split("\n") if "stage 0:" in line]
  assert len(final) == 1, stderr
  assert re.search(rf"^stage 0: 100%.* {steps}/{steps} ", final[0]), final[0]
  assert final[0].endswith(f"epoch {len(history)}/{len(history)}, val accuracy "
                           f"{history[-1]['val_accuracy']:.2%}]"), final[0]


def test_a_finished_run_started_again_changes_nothing(finished_run, data_dir):
  workdir, out = finished_run
  before = _params_at(workdir / "checkpoints")
  again = loop.train_and_evaluate(_four_classes(data_dir), workdir)
  assert again["splits"]["test"] == out["splits"]["test"]
  jax.tree.map(np.testing.assert_array_equal, before, _params_at(workdir / "checkpoints"))


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, data_dir):
  config = runs.tiny_config(data_dir)
  config.stages[0].schedule.update(name="piecewise", lr=1e-3, boundaries_epochs=(1,),
                                   decay_factor=1e30)  # epoch 1 runs at lr 1e27
  with pytest.raises(loop.NonFiniteLossError, match=r"loss is (nan|inf|-inf) at step (9|1\d) "
                                                    r"\(stage 0, epoch 1\).*last good checkpoint"):
    loop.train_and_evaluate(config, tmp_path)
  assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["8"]
  params = _params_at(tmp_path / "checkpoints")
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params))


def test_checkpoint_of_another_head_or_class_count_is_refused(finished_run, data_dir):
  workdir, _ = finished_run
  config = _four_classes(data_dir)
  config.model.head = "dense128"
  before = (workdir / "config.json").read_text()
  with pytest.raises(ValueError, match=r"does not fit this model(.|\n)*params/head/hidden/kernel"):
    loop.train_and_evaluate(config, workdir, config_change="allow")  # past the config check
  assert (workdir / "config.json").read_text() == before  # the refused config lost nothing
  assert not (workdir / "config_changes.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["freeze", "fraction", "features"])
def test_frozen_params_stay_at_their_start_and_the_rest_trains(mode, tmp_path, data_dir):
  """Regex freezing and freeze_fraction (the two first of four blocks), and feature
  extraction (head only, seed 003)."""
  config = runs.tiny_config(data_dir, epochs=2)
  if mode == "freeze":
    config.stages[0].freeze = (r"^block[12]",)
  elif mode == "fraction":  # 8 layers in forward order: conv, bn of block1…block4
    config.stages[0].freeze_fraction = 0.5
  else:
    config.feature_extraction = True
    config.stages[0].freeze = (r"^(?!head/)",)
  loop.train_and_evaluate(config, tmp_path)
  final, initial = _params_at(tmp_path / "checkpoints"), _initial_params(config)
  frozen = (["block1_conv1", "block2_conv1"] if mode != "features"
            else [k for k in final if k != "head"])
  for name in frozen:
    jax.tree.map(np.testing.assert_array_equal, final[name], initial[name])
  trained = ["block3_conv1", "head"] if mode != "features" else ["head"]
  for name in trained:
    assert not np.allclose(final[name]["predictions" if name == "head" else "conv"]["kernel"],
                           initial[name]["predictions" if name == "head" else "conv"]["kernel"])


def _initial_params(config):
  """What the loop starts from: init with config.seed at the global batch shape."""
  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  model = cj.models.create(config.model.name, num_classes=3, **config.model.options)
  variables = cj.models.initialize(model, jax.random.key(config.seed),
                                   jnp.zeros((32, 32, 32, 3)))
  return jax.tree.map(np.asarray, variables["params"])


def test_evaluate_mode_on_its_own_data_equals_results_json(finished_run):
  workdir, out = finished_run
  path, record = evaluate.evaluate_workdir(workdir, splits=["validation", "test"])
  assert path == str(workdir / "eval" / f"shapes_best_{record['checkpoint'].split('/')[1]}.json")
  assert json.loads(pathlib.Path(path).read_text()) == json.loads(json.dumps(record))
  for split in ("validation", "test"):
    assert record["splits"][split] == json.loads(json.dumps(out["splits"][split]))
  _, latest = evaluate.evaluate_workdir(workdir, which="latest", splits=["test"], name="last")
  assert latest["checkpoint"] == "checkpoints/24" and (workdir / "eval/last.json").exists()


def test_evaluate_mode_on_an_image_folder_of_the_same_classes(finished_run, data_dir, tmp_path):
  """The test split written as class folders (sorted by name, not the dataset's order):
  the same confusion counts, class by class."""
  workdir, out = finished_run
  source = datasets.get_source(from_config.data_config(_four_classes(data_dir)), "test")
  for i, (png, label) in enumerate(zip(source.load(np.arange(source.num_examples))["image"],
                                       source.labels)):
    folder = tmp_path / "images" / source.class_names[label]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{i:03d}.png").write_bytes(png)
  other = _four_classes(data_dir)
  other.data.update(name="folder", root=str(tmp_path / "images"), split_fractions=(0.0, 0.0, 1.0))
  _, record = evaluate.evaluate_workdir(workdir, other, splits=["test"], name="folder")
  names, theirs = out["class_names"], record["class_names"]
  assert sorted(names) == theirs != names  # the folder orders them otherwise
  ours, folder = np.asarray(out["splits"]["test"]["confusion_matrix"]), np.asarray(
      record["splits"]["test"]["confusion_matrix"])
  order = [names.index(n) for n in theirs]
  np.testing.assert_array_equal(folder, ours[np.ix_(order, order)])
  assert record["splits"]["test"]["accuracy"] == out["splits"]["test"]["accuracy"]


def test_evaluate_mode_refuses_a_foreign_checkpoint_and_a_missing_step(finished_run, tmp_path):
  workdir, _ = finished_run
  foreign = tmp_path / "foreign"
  shutil.copytree(workdir, foreign)
  config = json.loads((foreign / "config.json").read_text())
  config["model"]["head"] = "dense128"
  (foreign / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r"does not fit this model(.|\n)*params/head/hidden/kernel"):
    evaluate.evaluate_workdir(foreign, splits=["test"])
  with pytest.raises(WorkdirError, match=r"no checkpoint at step 7; saved steps: best/"):
    evaluate.evaluate_workdir(workdir, which="7", splits=["test"])

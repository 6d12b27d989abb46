"""Tiny training runs for the train, report and sweep tests: configs/demo.py on a 256-image
shapes dataset."""
import json
import pathlib

import orbax.checkpoint as ocp

import helpers
from cnnviz_jax.weights import store

TINY = ["--config.data.shapes.num_train=256", "--config.data.shapes.num_validation=64",
        "--config.data.shapes.num_test=64", "--config.data.shapes.num_classes=3",
        "--config.model.options.filters=(8, 8, 16, 16)", "--config.data.batch_size=32",
        "--config.stages[0].epochs=3"]


def tiny_flags(epochs: int) -> list[str]:
  """TINY with another number of epochs (the report tests: 2, the sweep's trials: 1)."""
  return [*(f for f in TINY if "epochs" not in f), f"--config.stages[0].epochs={epochs}"]


def tiny_config(data_dir: str, epochs: int = 3):
  """configs/demo.py with the TINY overrides, in process."""
  from configs import demo  # pylint: disable=import-outside-toplevel
  config = demo.get_config()
  config.data.data_dir = data_dir
  config.data.shapes.update(num_train=256, num_validation=64, num_test=64, num_classes=3)
  config.model.options.filters = (8, 8, 16, 16)
  config.stages[0].epochs = epochs
  return config


def run_main(workdir, data_dir, *extra, env=None, wait=True,
             config=helpers.ROOT / "configs/demo.py", report=False):
  """`python -m cnnviz_jax.main --config configs/demo.py` with the TINY overrides (the report
  has its own tests: off unless asked for)."""
  return helpers.python("-m", "cnnviz_jax.main", "--config", config, f"--workdir={workdir}",
                        f"--config.data.data_dir={data_dir}", *([] if report else ["--noreport"]),
                        *TINY, *extra, env=env, wait=wait)


def final_state(workdir: pathlib.Path, which: str = "checkpoints"):
  """The latest saved TrainState of a run (as a dict), on this process's device."""
  directory = pathlib.Path(workdir) / which
  return state_at(workdir, max(int(p.name) for p in directory.iterdir() if p.name.isdigit()),
                  which)


def state_at(workdir: pathlib.Path, step: int, which: str = "checkpoints"):
  """The TrainState saved at `step` (as a dict), read with orbax directly."""
  path = pathlib.Path(workdir) / which / str(step) / "state"
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(path, store.on_this_host(checkpointer.metadata(path).item_metadata))


def history(workdir: pathlib.Path) -> list[dict]:
  return json.loads((pathlib.Path(workdir) / "history.json").read_text())


def learned(state) -> dict:
  """A saved TrainState's parameters and BatchNorm statistics."""
  return {name: state[name] for name in ("params", "batch_stats")}


def assert_same_run(expected, got, atol: float | None = None) -> None:
  """Run `got` (a workdir) repeats run `expected`: every epoch's metrics and the last
  checkpoint's parameters and BatchNorm statistics, bit for bit (atol None: the optimizer state
  and results.json's splits too), or within atol (and assert_allclose's rtol)."""
  metrics = [{key: [h[key] for h in history(w)] for key in
              ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")}
             for w in (expected, got)]
  states = [final_state(w) for w in (expected, got)]
  if atol is not None:
    helpers.assert_trees_close(*metrics, atol=atol)
    helpers.assert_trees_close(*map(learned, states), atol=atol)
    return
  assert metrics[1] == metrics[0]
  helpers.assert_trees_equal(*({**learned(s), "opt_state": s["opt_state"]} for s in states[::-1]))
  results = [json.loads((pathlib.Path(w) / "results.json").read_text()) for w in (expected, got)]
  assert results[0]["splits"] == results[1]["splits"]

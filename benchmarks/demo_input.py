"""The demo's training input against its training step, on one core: CPU ms a batch of the
input pipeline with the images kept decoded in RAM (the default for a dataset of one fixed
image size) and kept as PNG bytes (decoded every epoch, as before), and the jitted demo step.

  python benchmarks/demo_input.py                  # taskset -c 0, batch 32, the demo's shapes
  python benchmarks/demo_input.py --data_dir /tmp/shapes_tfds

Each mode runs in its own process pinned to --cores; the shapes are generated into --data_dir
first (untimed). On one core the input and the step take turns: their sum is a step's cost.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("decoded", "bytes", "step")


def _cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _config(data_dir: str):
  sys.path.insert(0, ROOT)
  from configs import demo  # pylint: disable=import-outside-toplevel
  config = demo.get_config()
  config.data.data_dir = data_dir
  return config


def run_input(data_dir: str, steps: int, budget_mb: int) -> dict:
  from cnnviz_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import from_config  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  cfg = from_config.data_config(_config(data_dir))
  start = _cpu()
  iterator = pipeline.train_iterator(cfg, cache_budget_mb=budget_mb)
  built = _cpu() - start
  jax.block_until_ready(next(iterator)["image"])
  start, wall = _cpu(), time.perf_counter()
  for _ in range(steps):
    batch = next(iterator)
  jax.block_until_ready(batch["image"])
  return {"cpu_ms": (_cpu() - start) / steps * 1e3,
          "wall_ms": (time.perf_counter() - wall) / steps * 1e3,
          "build_cpu_s": built, "describe": iterator.describe()}


def run_step(data_dir: str, steps: int) -> dict:
  """The loop's own jitted train step of the demo (from_config.stage_state_and_step) on one
  batch of the pipeline, repeated."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import from_config, inputs  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  config = _config(data_dir)
  mesh = mesh_lib.make_mesh()
  data = inputs.Input(config, mesh)
  model = from_config.model(config, data.num_classes)
  example = jax.ShapeDtypeStruct((config.data.batch_size, *data.image_shape), jnp.float32)
  variables = from_config.initial_variables(config, model, example)
  stage = config.stages[0]
  mask = from_config.trainable_mask(stage, model, variables, example)
  state, step = from_config.stage_state_and_step(
      config, stage, model, variables, mask, first_step=0, rng=jax.random.PRNGKey(1),
      steps_per_epoch=data.steps_per_epoch,
      shardings=(mesh_lib.replicated(mesh), data.sharding))
  batch = next(data.train_batches(0, 1))
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start, wall = _cpu(), time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return {"cpu_ms": (_cpu() - start) / steps * 1e3,
          "wall_ms": (time.perf_counter() - wall) / steps * 1e3}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cores", default="0")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(),
                                                          "cnnviz_demo_input_tfds"))
  parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    result = (run_step(args.data_dir, args.steps) if args.worker == "step" else
              run_input(args.data_dir, 1 if args.worker == "prepare" else args.steps,
                        0 if args.worker == "bytes" else 4096))
    print("RESULT " + json.dumps(result))
    return
  results = {}
  for mode in ("prepare",) + MODES:  # prepare: generates the shapes once, untimed
    out = subprocess.run(["taskset", "-c", args.cores, sys.executable, __file__,
                          f"--worker={mode}", f"--steps={args.steps}",
                          f"--data_dir={args.data_dir}"], capture_output=True, text=True,
                         check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    results[mode] = json.loads(out.stdout.split("RESULT ", 1)[1])
  for mode in MODES:
    print(f"{mode:8s} {results[mode]['cpu_ms']:6.2f} ms CPU a batch of 32 "
          f"({results[mode]['wall_ms']:.2f} ms wall)"
          + (f", iterator built in {results[mode]['build_cpu_s']:.2f} CPU-s: "
             f"{results[mode]['describe']}" if mode != "step" else ""))
  step = results["step"]["cpu_ms"]
  for mode in ("decoded", "bytes"):
    print(f"input ({mode}) / step: {results[mode]['cpu_ms'] / step:.2f}")
  print(f"step + input, bytes / decoded: "
        f"{(step + results['bytes']['cpu_ms']) / (step + results['decoded']['cpu_ms']):.2f}x")


if __name__ == "__main__":
  main()

"""Time to a model's initial variables, each in a fresh process (no compilation cache):
flax's `jax.jit(model.init)` (what training ran before), `cj.models.initialize` (training's
init now: XLA level 1), its head-only subset (what `weights.transfer` initializes under a
pretrained backbone), and torchvision's constructor where it has the architecture.

  python benchmarks/init_compile.py [--models resnet50,inception_resnet_v2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {"small_cnn_bn": 32, "resnet50": 64, "vgg19": 32, "inception_v3": 75,
         "efficientnet_lite0": 64, "inception_resnet_v2": 75}
TORCHVISION = {"resnet50", "vgg19", "inception_v3"}
METHODS = ("jit_model_init", "initialize", "initialize_head_only", "torchvision")


def _worker(name: str, method: str) -> float:
  """Seconds from nothing to the variables on the host (trace, compile and run)."""
  if method == "torchvision":
    import torchvision  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    getattr(torchvision.models, name)(weights=None, num_classes=10, **(
        {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}))
    return time.perf_counter() - start
  import flax  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  model = cj.models.create(name, num_classes=10)
  x = jax.ShapeDtypeStruct((1, SIZES[name], SIZES[name], 3), jnp.float32)
  key = jax.random.key(0)
  start = time.perf_counter()
  if method == "jit_model_init":
    out = jax.jit(model.init)(key, x)
  elif method == "initialize":
    out = cj.models.initialize(model, key, x)
  else:
    paths = [p for p in flax.traverse_util.flatten_dict(cj.models.abstract_variables(model, x))
             if p[1] == "head"]
    out = cj.models.initialize(model, key, x, paths)
  jax.block_until_ready(out)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--models", default=",".join(SIZES))
  parser.add_argument("--worker", nargs=2)
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(_worker(*args.worker)))
    return
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  print(f"{'model':22s}" + "".join(f"{m:>22s}" for m in METHODS) + "   (seconds, fresh process)")
  for name in args.models.split(","):
    row = []
    for method in METHODS:
      if method == "torchvision" and name not in TORCHVISION:
        row.append("—")
        continue
      result = subprocess.run([sys.executable, __file__, "--worker", name, method], env=env,
                              capture_output=True, text=True, check=True)
      row.append(f"{json.loads(result.stdout.strip().splitlines()[-1]):.2f}")
    print(f"{name:22s}" + "".join(f"{r:>22s}" for r in row), flush=True)


if __name__ == "__main__":
  main()

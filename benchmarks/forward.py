"""Inference img/s at 224×224: cnnviz_jax (jit) vs torchvision, same weights, same run.

  python benchmarks/forward.py            # 1 core (taskset -c 0) and 2 cores
  python benchmarks/forward.py --repeats 20 --batches 8,32 --archs resnet50,vgg16
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import common  # pylint: disable=wrong-import-position


def worker(args):
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel

  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel

  cores = len(os.sched_getaffinity(0))
  torch.set_num_threads(cores)
  print(f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"{cores} core(s)")
  print(f"{'model':10s} {'batch':>5s} {'jax img/s':>10s} {'torch img/s':>12s} {'ratio':>6s}")
  for arch in args.archs.split(","):
    reference = getattr(torchvision.models, arch)(weights=None).eval()
    variables, _ = cj.weights.from_torchvision(arch, reference.state_dict())
    variables = jax.device_put(variables)
    model = cj.models.create(arch)
    forward = jax.jit(lambda v, x: model.apply(v, x))
    for batch in (int(b) for b in args.batches.split(",")):
      x = np.random.RandomState(0).randn(batch, 224, 224, 3).astype(np.float32)
      x_jax, x_torch = jax.device_put(x), torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

      def run_torch():
        with torch.inference_mode():
          reference(x_torch)

      seconds = common.alternate({"jax": lambda: forward(variables, x_jax).block_until_ready(),
                                  "torch": run_torch}, repeats=args.repeats)
      jax_rate, torch_rate = batch / seconds["jax"], batch / seconds["torch"]
      ratio = jax_rate / torch_rate
      print(f"{arch:10s} {batch:5d} {jax_rate:10.1f} {torch_rate:12.1f} "
            f"{ratio:5.2f}x{common.goal_note('forward ' + arch, ratio)}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--archs", default="resnet50,vgg16")
  parser.add_argument("--batches", default="8,32")
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  if args.worker:
    worker(args)
  else:
    common.run_per_core_count(__file__, [f"--archs={args.archs}", f"--batches={args.batches}",
                                         f"--repeats={args.repeats}"])


if __name__ == "__main__":
  main()

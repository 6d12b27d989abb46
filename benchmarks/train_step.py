"""ResNet-50 training img/s at 224×224 (batch 16, SGD momentum): JAX vs PyTorch, alternated
step by step in one process, as a ratio. Modes: fp32, bf16 activations (fp32 params),
90% of layers frozen, and feature extraction (head only on cached features).

  python benchmarks/train_step.py                  # 1 core and 2 cores, project XLA flags
  python benchmarks/train_step.py --xla default    # jaxlib's own CPU defaults, for comparison
  python benchmarks/train_step.py --gpu --batch 256 # on a GPU: JAX vs PyTorch on CUDA
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=wrong-import-position

common.choose_devices()


def worker(args):
  if args.xla == "default":
    os.environ["XLA_FLAGS"] = ""  # set, so cnnviz_jax leaves jaxlib's defaults alone
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  # (torchvision before cnnviz_jax's TensorFlow: the other order can segfault)

  cores = len(os.sched_getaffinity(0))
  torch.set_num_threads(cores)
  batch = args.batch
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}, {cores} core(s), batch {batch}, "
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, torch {torch.__version__} "
        f"on {common.torch_device()}")
  rs = np.random.RandomState(0)
  x = rs.randn(batch, 224, 224, 3).astype(np.float32)
  y = rs.randint(0, 1000, batch).astype(np.int32)

  for mode in args.modes.split(","):
    step, state, batch_jax, _ = common.resnet50_jax_step(x, y, mode)
    holder = {"state": state}

    def run_jax():
      holder["state"], metrics = step(holder["state"], batch_jax)
      metrics["loss"].block_until_ready()

    run_torch = common.resnet50_torch_step(jax.device_get(batch_jax["image"]), y, mode,
                                          common.torch_device())
    seconds = common.alternate({"jax": run_jax, "torch": run_torch}, repeats=args.repeats)
    jax_rate, torch_rate = batch / seconds["jax"], batch / seconds["torch"]
    ratio = jax_rate / torch_rate
    print(f"{mode:9s} jax {jax_rate:9.1f} img/s   torch {torch_rate:9.1f} img/s   "
          f"ratio {ratio:5.2f}x{common.goal_note('train ' + mode, ratio)}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--modes", default="fp32,bf16,frozen90,features")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--xla", choices=["project", "default"], default="project",
                      help="project: cnnviz_jax's CPU flags; default: jaxlib's own")
  parser.add_argument("--gpu", action="store_true", help="run both on the GPU, once")
  args = parser.parse_args()
  if args.worker:
    worker(args)
  else:
    common.run_per_core_count(__file__, [f"--modes={args.modes}", f"--batch={args.batch}",
                                         f"--repeats={args.repeats}", f"--xla={args.xla}"])


if __name__ == "__main__":
  main()

"""Input pipeline images/s at 224x224 with seed 001's augmentation, vs the seeds' way and
vs what a ResNet-50 training step consumes.

  python benchmarks/input_pipeline.py                 # all modes, 2 cores (taskset 0,1)
  python benchmarks/input_pipeline.py --cores 0 --images 128
  python benchmarks/input_pipeline.py --images 50000 --size 224 --root /tmp/folder50k \
      --modes ours,ours_stream,resnet50          # data larger than RAM (issue 15)

Modes, each in its own process pinned to --cores (TensorFlow and torch never share one):
  ours     cnnviz_jax.data.train_iterator over an image folder -> global jax.Arrays
  ours_stream  the same, streaming (cache_budget_mb=0: each image read when its step comes)
  keras    ImageDataGenerator(rotation 40, shifts 0.2, shear 0.2, zoom 0.2, h-flip,
           nearest fill).flow_from_directory(target_size=224) (tf_keras if installed,
           else Keras 3's identical legacy copy)
  torch    torchvision ImageFolder + DataLoader(num_workers=#cores), Resize(224) +
           RandomAffine(40, 0.2, 0.8-1.2, shear) + RandomHorizontalFlip + ToTensor
  resnet50 one jitted ResNet-50 SGD step (fwd + bwd + update) at batch --batch, img/s
The images are synthetic 500x375 JPEGs (cats_vs_dogs' typical size; --size S: SxS),
generated once (into --root if it is empty). Each mode reports its peak RSS and how long
building the iterator took (the cached mode reads every image first).
Goals (issue 4): ours >= 2x the ResNet-50 step, >= 1.5x the seeds' way (Keras).
Goals (issue 15): ours_stream >= 0.8x ours and >= 2x the ResNet-50 step, RSS < 2 GB.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_images(root: str, count: int, size: tuple[int, int] = (500, 375)) -> None:
  """`count` smooth-plus-grain JPEGs (width, height) in two class folders (realistic
  decode cost)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  for c in ("cat", "dog"):
    os.makedirs(os.path.join(root, c), exist_ok=True)
  yy, xx = np.mgrid[:size[1], :size[0]] / 100.0
  for i in range(count):
    f = rng.uniform(0.5, 3, (3, 2))
    base = np.stack([127 + 90 * np.sin(f[k, 0] * xx + f[k, 1] * yy + i) for k in range(3)], -1)
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(os.path.join(root, ("cat", "dog")[i % 2], f"{i}.jpg"),
                                quality=90)


def _rate(next_batch, batch: int, steps: int, warmup: int = 3) -> float:
  """Images per second over `steps` batches, after `warmup` batches (median of 3 windows)."""
  for _ in range(warmup):
    next_batch()
  rates = []
  for _ in range(3):
    start = time.perf_counter()
    for _ in range(steps):
      next_batch()
    rates.append(batch * steps / (time.perf_counter() - start))
  return float(np.median(rates))


def run_ours(args, budget_mb: int = 4096) -> float:
  from cnnviz_jax import data  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  it = data.train_iterator(name="folder", root=args.root, split_fractions=(1.0, 0.0, 0.0),
                           batch_size=args.batch, image_size=224, normalization="unit",
                           augment=data.KERAS_SEED_001, cache_budget_mb=budget_mb)
  print(json.dumps({"build_s": time.perf_counter() - start}), flush=True)

  def step():
    batch = next(it)
    batch["image"].block_until_ready()
  return _rate(step, args.batch, args.steps)


def run_keras(args) -> float:
  # pylint: disable=import-outside-toplevel
  try:
    from tf_keras.preprocessing.image import ImageDataGenerator
  except ImportError:  # Keras 3 keeps the same code as a legacy module
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
  gen = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2,
                           height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                           horizontal_flip=True, fill_mode="nearest")
  flow = gen.flow_from_directory(args.root, target_size=(224, 224), batch_size=args.batch,
                                 class_mode="binary", seed=0)
  return _rate(lambda: next(flow), args.batch, args.steps)


def run_torch(args) -> float:
  import torch  # pylint: disable=import-outside-toplevel
  from torchvision import datasets, transforms as T  # pylint: disable=import-outside-toplevel
  cores = len(os.sched_getaffinity(0))
  torch.set_num_threads(1)
  tf = T.Compose([T.Resize((224, 224)), T.RandomAffine(40, (0.2, 0.2), (0.8, 1.2), shear=0.2),
                  T.RandomHorizontalFlip(), T.ToTensor()])
  loader = torch.utils.data.DataLoader(datasets.ImageFolder(args.root, tf), batch_size=args.batch,
                                       shuffle=True, num_workers=cores, persistent_workers=True,
                                       drop_last=True)
  state = {"it": iter(loader)}

  def step():
    try:
      next(state["it"])
    except StopIteration:
      state["it"] = iter(loader)
      next(state["it"])
  return _rate(step, args.batch, args.steps)


def run_resnet50(args) -> float:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from cnnviz_jax import models  # pylint: disable=import-outside-toplevel
  model = models.create("resnet50", num_classes=2)
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (args.batch, 224, 224, 3)), jnp.float32)
  y = jnp.arange(args.batch) % 2
  variables = jax.jit(model.init)(jax.random.key(0), x)
  tx = optax.sgd(0.01, momentum=0.9)
  state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

  @jax.jit
  def train_step(state, x, y):
    params, stats, opt = state

    def loss_fn(p):
      logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new
    (_, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), new["batch_stats"], opt

  holder = {"state": state}

  def step():
    holder["state"] = train_step(holder["state"], x, y)
    jax.block_until_ready(holder["state"])
  return _rate(step, args.batch, max(1, args.steps // 8), warmup=1)


MODES = {"ours": run_ours, "ours_stream": lambda args: run_ours(args, budget_mb=0),
         "keras": run_keras, "torch": run_torch, "resnet50": run_resnet50}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cores", default="0,1", help="taskset core list for every mode")
  parser.add_argument("--images", type=int, default=256)
  parser.add_argument("--size", type=int, default=None, help="generate SxS images")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=8, help="batches per timed window")
  parser.add_argument("--modes", default=",".join(MODES))
  parser.add_argument("--root", default=None, help="image folder (default: generated)")
  parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    rate = MODES[args.worker](args)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({args.worker: rate, "rss_mb": peak_mb}), flush=True)
    return
  with tempfile.TemporaryDirectory() as tmp:
    root = args.root or tmp
    if not os.path.isdir(root) or not os.listdir(root):
      start = time.perf_counter()
      make_images(root, args.images, (args.size, args.size) if args.size else (500, 375))
      print(f"generated {args.images} images in {time.perf_counter() - start:.0f} s")
    rates = {}
    for mode in args.modes.split(","):
      cmd = ["taskset", "-c", args.cores, sys.executable, __file__, "--worker", mode,
             "--root", root, "--batch", str(args.batch), "--steps", str(args.steps)]
      env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
      out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
      lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
      if out.returncode or not lines:
        print(f"{mode}: failed\n{out.stderr[-2000:]}")
        continue
      found = {k: v for line in lines for k, v in json.loads(line).items()}
      rates[mode] = found[mode]
      built = f", iterator built in {found['build_s']:.1f} s" if "build_s" in found else ""
      print(f"{mode:11s} {rates[mode]:8.1f} images/s, peak RSS {found['rss_mb']:7.0f} MB{built}",
            flush=True)
  cores = len(args.cores.split(","))
  print(f"\n{cores} core(s), batch {args.batch}, 224x224, seed-001 augmentation")
  for ours, other, goal in (("ours", "keras", 1.5), ("ours", "torch", None),
                            ("ours", "resnet50", 2.0), ("ours_stream", "ours", 0.8),
                            ("ours_stream", "resnet50", 2.0)):
    if ours in rates and other in rates:
      need = f" (goal >= {goal}x)" if goal else ""
      print(f"{ours} / {other:8s} = {rates[ours] / rates[other]:6.2f}x{need}")


if __name__ == "__main__":
  main()

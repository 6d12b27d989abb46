"""ResNet-50 training img/s at 224×224 (batch 16, SGD momentum): JAX vs PyTorch, alternated
step by step in one process, as a ratio. Modes: fp32, bf16 activations (fp32 params),
90% of layers frozen, and feature extraction (head only on cached features).

  python benchmarks/train_step.py                  # 1 core and 2 cores, project XLA flags
  python benchmarks/train_step.py --xla default    # jaxlib's own CPU defaults, for comparison
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import common  # pylint: disable=wrong-import-position


def _torch_step(torch, model, optimizer, x, y):
  optimizer.zero_grad(set_to_none=True)
  loss = torch.nn.functional.cross_entropy(model(x), y)
  loss.backward()
  optimizer.step()


def worker(args):
  if args.xla == "default":
    os.environ["XLA_FLAGS"] = ""  # set, so cnnviz_jax leaves jaxlib's defaults alone
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import ml_collections  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel

  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import freeze, optimizers, steps  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train.state import TrainState  # pylint: disable=import-outside-toplevel

  cores = len(os.sched_getaffinity(0))
  torch.set_num_threads(cores)
  batch = args.batch
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}, {cores} core(s), batch {batch}")
  rs = np.random.RandomState(0)
  x = rs.randn(batch, 224, 224, 3).astype(np.float32)
  y = rs.randint(0, 1000, batch).astype(np.int32)
  x_t, y_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y).long()
  sgd = ml_collections.ConfigDict({"name": "sgd", "momentum": 0.9})

  for mode in args.modes.split(","):
    dtype = jnp.bfloat16 if mode == "bf16" else jnp.float32
    model = cj.models.create("resnet50", dtype=dtype)
    variables = jax.jit(model.init)(jax.random.key(0), x[:1])
    order = cj.models.module_order(model, variables, x[:1])
    fraction = 0.9 if mode == "frozen90" else 0.0
    mask = freeze.trainable_mask(variables["params"], freeze_fraction=fraction, module_order=order,
                                 freeze=[r"^(?!head/)"] if mode == "features" else ())
    tx = optimizers.make(sgd, 0.01)
    state = TrainState(jnp.asarray(0), variables["params"], variables["batch_stats"],
                       tx.init(freeze.split(variables["params"], mask)[0]), jax.random.key(1))
    inputs = x
    if mode == "features":
      inputs = np.asarray(cj.models.head_inputs(model, variables, x))
    step = jax.jit(steps.make_train_step(model, tx, mask, features_input_shape=(
        x.shape if mode == "features" else None)), donate_argnums=(0,))
    batch_jax = {"image": jax.device_put(inputs), "label": jax.device_put(y)}
    holder = {"state": state}

    def run_jax():
      holder["state"], metrics = step(holder["state"], batch_jax)
      metrics["loss"].block_until_ready()

    reference = torchvision.models.resnet50().train()
    trainable_t = list(reference.parameters())
    if mode == "frozen90":  # the same first 90% of conv/BN layers, in forward order
      layers = [m for m in reference.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
      for m in layers[:int(0.9 * len(layers))]:
        for p in m.parameters():
          p.requires_grad_(False)
      trainable_t = [p for p in reference.parameters() if p.requires_grad]
    features_t = None
    if mode == "features":  # the head on cached layer4 maps: pool + linear, as ours
      features_t = torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())
      reference = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                      torch.nn.Linear(2048, 1000))
      trainable_t = list(reference.parameters())
    optimizer = torch.optim.SGD(trainable_t, lr=0.01, momentum=0.9)

    def run_torch():
      with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
        _torch_step(torch, reference, optimizer, features_t if mode == "features" else x_t, y_t)

    seconds = common.alternate({"jax": run_jax, "torch": run_torch}, repeats=args.repeats)
    jax_rate, torch_rate = batch / seconds["jax"], batch / seconds["torch"]
    print(f"{mode:9s} jax {jax_rate:9.1f} img/s   torch {torch_rate:9.1f} img/s   "
          f"ratio {jax_rate / torch_rate:5.2f}x", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--modes", default="fp32,bf16,frozen90,features")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--xla", choices=["project", "default"], default="project",
                      help="project: cnnviz_jax's CPU flags; default: jaxlib's own")
  args = parser.parse_args()
  if args.worker:
    worker(args)
  else:
    common.run_per_core_count(__file__, [f"--modes={args.modes}", f"--batch={args.batch}",
                                         f"--repeats={args.repeats}", f"--xla={args.xla}"])


if __name__ == "__main__":
  main()

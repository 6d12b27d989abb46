"""Benchmark plumbing: run a worker per core count (taskset), time callables alternately."""
import os
import subprocess
import sys
import time
from typing import Callable

import numpy as np


# Issue 17's goals (ratios to the peer), printed beside each measurement. Where one is not
# met, benchmarks/README.md says what bounds it, with the profile that shows it.
GOALS = {
    "train fp32": 1.0, "train bf16": 1.2, "train frozen90": 1.5,
    "forward vgg16": 1.3, "forward resnet50": 1.0,
    "grad_cam": 3.5, "grad_cam_plus_plus": 3.5, "guided_backprop": 1.3, "smoothgrad": 1.5,
    "integrated_grads": 1.5, "score_cam": 2.0,
}


def goal_note(key: str, ratio: float) -> str:
  """'  goal >= 1.3x: met' (or 'NOT met'); '' for a measurement without a goal."""
  goal = GOALS.get(key)
  if goal is None:
    return ""
  return f"  goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'}"


def gpu_requested() -> bool:
  """`--gpu` on the command line: JAX and the PyTorch peer both run on the GPU, once."""
  return "--gpu" in sys.argv


def choose_devices() -> None:
  """Before importing JAX: hide GPUs from a CPU benchmark; on a GPU, let the PyTorch peer share
  the card (JAX would otherwise preallocate 75% of its memory)."""
  if gpu_requested():
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  else:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def torch_device() -> str:
  return "cuda" if gpu_requested() else "cpu"


def torch_sync() -> None:
  """Waits for PyTorch's queued GPU work, so a timed call includes it (a no-op on the CPU)."""
  if gpu_requested():
    import torch  # pylint: disable=import-outside-toplevel
    torch.cuda.synchronize()


def run_per_core_count(script: str, extra_args: list[str], core_sets=("0", "0,1")) -> None:
  """Re-runs `script --worker` pinned to each core set (XLA sizes its pool from them); with
  --gpu, once, on all cores."""
  if gpu_requested():
    subprocess.run([sys.executable, script, "--worker", "--gpu",
                    *[a for a in extra_args if a != "--gpu"]], check=True)
    return
  available = os.sched_getaffinity(0)
  for cores in core_sets:
    if not {int(c) for c in cores.split(",")} <= available:
      print(f"skipping cores {cores}: only {sorted(available)} available")
      continue
    print(f"\n=== {len(cores.split(','))} core(s) (taskset -c {cores}) ===", flush=True)
    subprocess.run(["taskset", "-c", cores, sys.executable, script, "--worker", *extra_args],
                   check=True)


def alternate(timed: dict[str, Callable[[], None]], repeats: int, warmup: int = 2
              ) -> dict[str, float]:
  """Median seconds per call of each function, calling them in turn so load drifts hit all."""
  for fn in timed.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in timed}
  for _ in range(repeats):
    for name, fn in timed.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def resnet50_jax_step(x, y, mode: str = "fp32"):
  """The ResNet-50 training step the benchmarks time and profile (SGD momentum, lr 0.01).
  mode: fp32, bf16 (activations), frozen90 (first 90% of layers), features (head only, on
  cached features). -> (jitted step donating its state, state, batch, variables)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.data import layout  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import from_config  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/
  from configs import default  # pylint: disable=import-outside-toplevel

  model = cj.models.create("resnet50", dtype=jnp.bfloat16 if mode == "bf16" else jnp.float32)
  variables = jax.jit(model.init)(jax.random.key(0), x[:1])
  stage = default.stage(optimizer="sgd", lr=0.01, schedule="constant",
                        freeze_fraction=0.9 if mode == "frozen90" else 0.0,
                        freeze=(r"^(?!head/)",) if mode == "features" else ())
  mask = from_config.trainable_mask(stage, model, variables, x[:1])
  mesh = mesh_lib.make_mesh()
  state, step = from_config.stage_state_and_step(
      default.get_config(), stage, model, variables, mask, first_step=0, rng=jax.random.key(1),
      steps_per_epoch=1, shardings=(mesh_lib.replicated(mesh), layout.batch_sharding(mesh)),
      features_input_shape=x.shape if mode == "features" else None)
  inputs = np.asarray(cj.models.head_inputs(model, variables, x)) if mode == "features" else x
  batch = {"image": jax.device_put(inputs), "label": jax.device_put(y)}
  return step, state, batch, variables


def resnet50_torch_step(inputs, y, mode: str = "fp32", device: str = "cpu"
                        ) -> Callable[[], None]:
  """The same step in PyTorch (torchvision's ResNet-50) -> step(). inputs: NHWC, the images
  (or, for features, the head inputs of resnet50_jax_step's batch). On "cuda": channels-last
  and cuDNN's autotuner, as PyTorch's performance guide advises; step() waits for the GPU."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchvision  # pylint: disable=import-outside-toplevel

  layout = torch.channels_last if device == "cuda" else torch.contiguous_format
  torch.backends.cudnn.benchmark = device == "cuda"
  x_t = torch.from_numpy(np.asarray(inputs).transpose(0, 3, 1, 2).copy()).to(
      device, memory_format=layout)
  y_t = torch.from_numpy(np.asarray(y)).long().to(device)
  model = torchvision.models.resnet50().train().to(device, memory_format=layout)
  trainable = list(model.parameters())
  if mode == "frozen90":  # the same first 90% of conv/BN layers, in forward order
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
    for m in layers[:int(0.9 * len(layers))]:
      for p in m.parameters():
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
  if mode == "features":  # the head on cached layer4 maps: pool + linear, as ours
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(2048, 1000)).to(device)
    trainable = list(model.parameters())
  optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)

  def step():
    with torch.autocast(device, dtype=torch.bfloat16, enabled=mode == "bf16"):
      optimizer.zero_grad(set_to_none=True)
      torch.nn.functional.cross_entropy(model(x_t), y_t).backward()
      optimizer.step()
    if device == "cuda":
      torch.cuda.synchronize()

  return step

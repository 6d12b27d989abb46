"""Where a ResNet-50 training step spends its time, by kind of work, in JAX and in PyTorch.

JAX: a `jax.profiler` trace of the jitted step; each XLA:CPU thunk event is matched to its HLO
instruction in the compiled module and put in a category (convolution forward / input
gradient / weight gradient, dense, reductions, pooling, layout copies, elementwise fusions).
PyTorch: `torch.profiler` on the same step, its aten ops in the same categories. On one core
(the default) the thunks run one after another, so the categories add up to the step.

  python benchmarks/profile_step.py               # 1 core, batch 16, fp32
  python benchmarks/profile_step.py --cores 0,1
"""
import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import common  # pylint: disable=wrong-import-position

CATEGORIES = ("conv forward", "conv input-grad", "conv weight-grad", "conv backward (both)",
              "1x1 conv as dot", "dense", "reductions", "pooling", "transposes (+ fused)",
              "layout copies", "elementwise", "other")
HLO_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) (\w[\w\-]*)\(")


def _shape_dims(shape: str) -> tuple[int, ...]:
  match = re.search(r"\[([\d,]*)\]", shape)
  return tuple(int(d) for d in match.group(1).split(",") if d) if match else ()


def _hlo_categories(hlo_text: str, kernel_shapes: set) -> dict[str, str]:
  """instruction name -> category, for the entry computation's instructions (the thunks)."""
  computations, current = {}, None
  for line in hlo_text.splitlines():
    header = re.match(r"^(ENTRY )?%?([\w.\-]+) .*\{$", line)
    if header:
      current = computations.setdefault(header.group(2), [])
      continue
    match = HLO_INSTRUCTION.match(line)
    if match and current is not None:
      current.append((match.group(1), match.group(2), match.group(3), line))
  opcodes = {name: {op for _, _, op, _ in body} for name, body in computations.items()}

  def called_ops(line: str) -> set:
    ops = set()
    for callee in re.findall(r"calls=%?([\w.\-]+)", line):
      ops |= opcodes.get(callee, set())
    return ops

  categories = {}
  for body in computations.values():
    for name, shape, opcode, line in body:
      ops = {opcode} | (called_ops(line) if opcode in ("fusion", "call", "custom-call") else set())
      if "convolution" in ops:
        # XLA's rewrites drop the metadata of some weight-gradient convolutions: the output
        # shape (a kernel's) names them
        if tuple(sorted(_shape_dims(shape))) in kernel_shapes:
          category = "conv weight-grad"
        elif "transpose(" in line:
          category = "conv input-grad"
        else:
          category = "conv forward"
      elif "dot" in ops:  # ResNet's 1×1 convolutions are dots (layers.conv_or_dot)
        category = "1x1 conv as dot" if re.search(r'op_name="[^"]*conv[^"]*"', line) else "dense"
      elif ops & {"reduce-window", "select-and-scatter"}:
        category = "pooling"
      elif "reduce" in ops:
        category = "reductions"
      elif "transpose" in ops and opcode != "transpose":  # with the elementwise fused in
        category = "transposes (+ fused)"
      elif opcode in ("copy", "transpose") or ops <= {"copy", "transpose", "bitcast", "parameter"}:
        category = "layout copies"
      elif opcode == "fusion":
        category = "elementwise"
      else:
        category = "other"
      categories[name] = category
  return categories


def _profile_jax(x, y, steps: int):
  import jax  # pylint: disable=import-outside-toplevel

  step, state, batch_jax, variables = common.resnet50_jax_step(x, y)
  compiled = step.lower(state, batch_jax).compile()
  kernel_shapes = {tuple(sorted(leaf.shape)) for leaf in jax.tree.leaves(variables["params"])
                   if leaf.ndim == 4}
  categories = _hlo_categories(compiled.as_text(), kernel_shapes)
  for _ in range(2):
    state, metrics = compiled(state, batch_jax)
  jax.block_until_ready(metrics)
  trace_dir = tempfile.mkdtemp(prefix="profile_step_")
  start = time.perf_counter()
  jax.profiler.start_trace(trace_dir)
  for _ in range(steps):
    state, metrics = compiled(state, batch_jax)
    jax.block_until_ready(metrics)
  jax.profiler.stop_trace()
  wall = (time.perf_counter() - start) / steps
  path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))[-1]
  totals = collections.Counter()
  for plane in jax.profiler.ProfileData.from_file(path).planes:
    for line in plane.lines:
      if not line.name.startswith("tf_XLA"):
        continue
      for event in line.events:
        if event.name in categories:
          totals[categories[event.name]] += event.duration_ns / 1e6 / steps
  return totals, wall * 1e3


def _torch_category(name: str) -> str | None:
  if name in ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
              "aten::conv2d"):
    return "conv forward" if name == "aten::mkldnn_convolution" else None
  if name == "aten::convolution_backward":
    return "conv backward (both)"
  if name in ("aten::addmm", "aten::mm"):  # the classifier only: torch's 1×1 are convolutions
    return "dense"
  if "batch_norm" in name:
    return "reductions"  # statistics and normalization, forward and backward, in one kernel
  if "max_pool" in name or "avg_pool" in name or "adaptive" in name:
    return "pooling"
  if name in ("aten::copy_", "aten::contiguous", "aten::clone", "aten::to", "aten::_to_copy"):
    return "layout copies"
  if name in ("aten::relu_", "aten::relu", "aten::threshold_backward", "aten::add_", "aten::add",
              "aten::mul_", "aten::_foreach_add_", "aten::_foreach_mul_", "aten::_foreach_add",
              "aten::fill_", "aten::zero_", "aten::sum"):
    return "elementwise"
  return None


def _profile_torch(x, y, steps: int):
  import torch  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(len(os.sched_getaffinity(0)))
  step = common.resnet50_torch_step(x, y)
  for _ in range(2):
    step()
  start = time.perf_counter()
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
    for _ in range(steps):
      step()
  wall = (time.perf_counter() - start) / steps
  totals = collections.Counter()
  for event in profiler.key_averages():
    category = _torch_category(event.key)
    if category is not None:  # self time: a parent op is not counted again for its children
      totals[category] += event.self_cpu_time_total / 1e3 / steps
  return totals, wall * 1e3


def worker(args):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torchvision  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  # (torchvision before cnnviz_jax's TensorFlow: the other order can segfault)

  rs = np.random.RandomState(0)
  x = rs.randn(args.batch, 224, 224, 3).astype(np.float32)
  y = rs.randint(0, 1000, args.batch).astype(np.int32)
  jax_totals, jax_wall = _profile_jax(x, y, args.steps)
  torch_totals, torch_wall = _profile_torch(x, y, args.steps)
  print(f"ResNet-50 training step, batch {args.batch}, fp32, "
        f"{len(os.sched_getaffinity(0))} core(s); ms per step (share of the profiled step)")
  print(f"{'':24s} {'XLA':>16s} {'PyTorch':>16s}")
  for category in CATEGORIES:
    a, b = jax_totals.get(category, 0.0), torch_totals.get(category, 0.0)
    if a or b:
      print(f"{category:24s} {a:8.0f} ({a / jax_wall:4.0%}) {b:8.0f} ({b / torch_wall:4.0%})")
  named = lambda totals: sum(totals.values())
  print(f"{'named above':24s} {named(jax_totals):8.0f} ({named(jax_totals) / jax_wall:4.0%})"
        f" {named(torch_totals):8.0f} ({named(torch_totals) / torch_wall:4.0%})")
  print(f"{'step (wall, profiled)':24s} {jax_wall:8.0f}        {torch_wall:8.0f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--cores", default="0", help="taskset core list, e.g. 0 or 0,1")
  args = parser.parse_args()
  if args.worker:
    worker(args)
  else:
    common.run_per_core_count(__file__, [f"--batch={args.batch}", f"--steps={args.steps}"],
                              core_sets=(args.cores,))


if __name__ == "__main__":
  main()

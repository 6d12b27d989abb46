"""Which precision XLA computes the bf16 ResNet-50 training step's convolutions and dots in:
their result types before XLA's passes (what we asked for) and in the compiled module.

  python benchmarks/bf16_hlo.py                      # project XLA flags
  XLA_FLAGS=--xla_cpu_use_onednn=true python benchmarks/bf16_hlo.py
"""
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # pylint: disable=wrong-import-position

import common  # pylint: disable=wrong-import-position
import profile_step  # pylint: disable=wrong-import-position


def _ops_by_type(hlo_text: str) -> collections.Counter:
  """(opcode, result element type) -> count, for every convolution and dot."""
  counts = collections.Counter()
  for line in hlo_text.splitlines():
    match = profile_step.HLO_INSTRUCTION.match(line)
    if match and match.group(3) in ("convolution", "dot"):
      counts[(match.group(3), match.group(2).split("[")[0])] += 1
  return counts


def main():
  import jax  # pylint: disable=import-outside-toplevel
  rs = np.random.RandomState(0)
  x, y = rs.randn(2, 64, 64, 3).astype(np.float32), rs.randint(0, 1000, 2).astype(np.int32)
  step, state, batch, _ = common.resnet50_jax_step(x, y, "bf16")
  lowered = step.lower(state, batch)
  compiled = lowered.compile().as_text()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
  print("asked for (lowered):", dict(_ops_by_type(lowered.as_text(dialect="hlo"))))
  print("computed (compiled):", dict(_ops_by_type(compiled)),
        f"with {len(re.findall(r' convert[(]', compiled))} converts")


if __name__ == "__main__":
  main()

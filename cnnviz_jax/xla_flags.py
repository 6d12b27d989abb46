"""The one place cnnviz_jax sets XLA flags, and only when the user has set none.

On XLA-CPU the default YNNPACK convolutions are slower than Eigen's
for CNN training, largely in the weight-gradient convolutions; Eigen also turns
1×1 convolutions into matmuls. benchmarks/train_step.py measures both settings
(`--xla default` keeps jaxlib's own). The flag is CPU-only: GPUs and TPUs ignore it.
Set XLA_FLAGS yourself (even to "") and it is left alone.
"""
import os

CPU_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,-individual_dot"


def apply_defaults() -> None:
  """Must run before JAX creates its backend (importing cnnviz_jax does it)."""
  if "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = CPU_FLAGS

"""cnnviz_jax: transfer learning of ImageNet CNNs and what they learned, in JAX/Flax."""
from cnnviz_jax import xla_flags

xla_flags.apply_defaults()

from cnnviz_jax import explain, models, weights  # noqa: E402,F401  (after the XLA flags)

__version__ = "0.1.0"

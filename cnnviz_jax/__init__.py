"""cnnviz_jax: transfer learning of ImageNet CNNs and what they learned, in JAX/Flax."""
from cnnviz_jax import models, weights  # noqa: F401

__version__ = "0.1.0"

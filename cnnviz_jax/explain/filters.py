"""Convolution kernels as images (first-layer filters by default)."""
import jax
import jax.numpy as jnp
from flax import traverse_util

from cnnviz_jax.explain import maps


def _conv_kernels(params) -> dict[str, jax.Array]:
  """{'a/b/kernel' path: (kh, kw, in, out)} of every 2-D convolution, in parameter order."""
  flat = traverse_util.flatten_dict(params, sep="/")
  return {path: k for path, k in flat.items() if path.endswith("kernel") and k.ndim == 4}


def filters(variables, layer: str | None = None, normalise: bool = True) -> jax.Array:
  """Kernels of one convolution as (out, kh, kw, in) images.

  Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
  NeurIPS 2012 (figure 3: the first layer's filters). layer: a module path such as
  'stem/conv1' or 'block1_conv1' (a prefix that names exactly one convolution); None:
  the first convolution that reads the image (3 input channels, earliest in the tree).
  normalise: each filter min-max scaled to [0, 1] for display (epsilon-safe).
  """
  kernels = _conv_kernels(variables.get("params", variables))
  if not kernels:
    raise ValueError("no 2-D convolution kernel in these variables")
  if layer is None:
    first = [p for p, k in kernels.items() if k.shape[2] in (1, 3)] or list(kernels)
    matches = [first[0]]
  else:
    matches = [p for p in kernels if p == layer or p.startswith(layer.rstrip("/") + "/")]
    if len(matches) != 1:
      names = ", ".join(p.removesuffix("/kernel") for p in kernels)
      what = "no" if not matches else f"{len(matches)}"
      raise ValueError(f"{what} convolution(s) under {layer!r}; convolutions: {names}")
  images = jnp.transpose(kernels[matches[0]], (3, 0, 1, 2))  # (out, kh, kw, in)
  return maps.normalise(images, axes=(1, 2, 3)) if normalise else images

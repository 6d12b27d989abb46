"""Convolution kernels as images (first-layer filters by default)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from cnnviz_jax.explain import maps
from cnnviz_jax.models import taps


def _conv_kernels(params) -> dict[str, jax.Array]:
  """{'a/b/kernel' path: (kh, kw, in, out)} of every 2-D convolution."""
  flat = traverse_util.flatten_dict(params, sep="/")
  return {path: k for path, k in flat.items() if path.endswith("kernel") and k.ndim == 4}


def filters(model: nn.Module, variables, x: jax.Array | None = None, layer: str | None = None,
            *, normalize: bool = True) -> jax.Array:
  """Kernels of one convolution as (out, kh, kw, in) images.

  Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
  NeurIPS 2012 (figure 3: the first layer's filters). layer: a tap name or parameter path
  holding exactly one convolution ('stem', 'block1_conv1', 'layer1/block0/conv1');
  None: the first tappable layer in forward order (x, if given, sets the input shape).
  normalize: each filter min-max scaled to [0, 1] for display (epsilon-safe).
  A function of the parameters alone: no batch axis to shard; jits, vmaps, differentiates.
  """
  kernels = _conv_kernels(variables.get("params", variables))
  if not kernels:
    raise ValueError("no 2-D convolution kernel in these variables")
  if layer is None:
    shape = None if x is None else jax.ShapeDtypeStruct(x.shape, x.dtype)
    layer = taps.layer_names(model, variables, shape)[0]
  prefix = layer.rstrip("/") + "/"
  matches = [p for p in kernels if p == layer or p.startswith(prefix)]
  if len(matches) != 1:
    names = ", ".join(p.removesuffix("/kernel") for p in kernels)
    raise ValueError(f"{len(matches)} convolutions under {layer!r}, need exactly one; "
                     f"convolutions: {names}")
  images = jnp.transpose(kernels[matches[0]], (3, 0, 1, 2))  # (out, kh, kw, in)
  return maps.normalize(images, axes=(1, 2, 3)) if normalize else images

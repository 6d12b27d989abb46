"""Feature maps at named layers, from one forward pass."""
from typing import Sequence

import flax.linen as nn
import jax

from cnnviz_jax.explain import layer_gradients
from cnnviz_jax.models import taps


def activations(model: nn.Module, variables, x: jax.Array,
                layers: str | Sequence[str] | None = None) -> dict[str, jax.Array]:
  """{layer: (B, h, w, C)} for a name, a list of names, or None (every tappable layer).

  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014
  (feature maps as the first look inside a CNN). Unknown names list the valid ones.
  """
  if layers is None:
    layers = taps.layer_names(model, variables, jax.ShapeDtypeStruct(x.shape, x.dtype))
  else:
    layers = layer_gradients.resolve_layers(model, variables, x, layers)
  _, acts = taps.apply_with_taps(model, variables, x, layers)
  return acts

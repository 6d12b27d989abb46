"""Models found by name: `create('resnet50', num_classes=5, head='dense256')`.

A new architecture is one module file plus `@register('name')` on a factory
`(num_classes, head, **options) -> nn.Module`; it then gets `layer_names`, the
explainers and training for free.
"""
from typing import Callable

import flax.linen as nn

from cnnviz_jax.errors import UserInputError, check_one_of

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
  """Decorator: registers `factory(num_classes, head, **options)` under `name`."""

  def wrap(factory):
    if name in _FACTORIES:
      raise ValueError(f"model {name!r} is already registered")
    _FACTORIES[name] = factory
    return factory

  return wrap


def available() -> list[str]:
  return sorted(_FACTORIES)


def create(name: str, num_classes: int = 1000, head=None, **options) -> nn.Module:
  """Builds the registered model `name` (a flax.linen.Module).

  head: None (the architecture's own classifier), 'linear', 'dense' / 'dense128'
  / 'dense256' / 'dense512', 'mlp', or a `HeadSpec`/dict (see models/heads.py).
  """
  check_one_of(name, available(), "model", error=UserInputError)
  return _FACTORIES[name](num_classes=num_classes, head=head, **options)

"""Classifier heads: any backbone with any head and any number of classes.

Every model calls its head as the top-level submodule named 'head', so transfer
learning is "replace the 'head' subtree" and freeze rules can say `^(?!head/)`.
"""
import dataclasses
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  kind: str = "linear"  # 'linear' | 'dense' | 'mlp'
  hidden: int = 256  # width of the hidden layer ('dense', 'mlp')
  dropout: float = 0.5
  pool: str = "avg"  # 'avg' (global average) | 'flatten' (Keras Flatten)
  input_dropout: float = 0.0  # on the pooled features (EfficientNet's own head: 0.2 / 0.3)


KINDS = ("linear", "dense", "mlp")


def head_spec(head, default: HeadSpec) -> HeadSpec:
  """Parses the `head=` option of `models.create`; None keeps the model's own head."""
  if head is None:
    return default
  if hasattr(head, "to_dict"):  # a ConfigDict: `config.model.head` set to HeadSpec fields
    head = head.to_dict()
  if isinstance(head, HeadSpec):
    spec = head
  elif isinstance(head, dict):
    unknown = set(head) - {f.name for f in dataclasses.fields(HeadSpec)}
    if unknown:
      raise ValueError(f"unknown head option(s) {sorted(unknown)}; valid: "
                       f"{[f.name for f in dataclasses.fields(HeadSpec)]}")
    spec = HeadSpec(**head)
  elif isinstance(head, str) and head.startswith("dense") and head[5:].isdigit():
    spec = HeadSpec(kind="dense", hidden=int(head[5:]))
  elif isinstance(head, str) and head == "mlp":
    spec = HeadSpec(kind="mlp", hidden=512)  # 2048 -> 512 -> C: a transfer-learning MLP head
  elif isinstance(head, str):
    spec = HeadSpec(kind=head)
  else:
    raise TypeError(f"head must be None, a str, a dict or a HeadSpec, got {type(head)}")
  if spec.kind not in KINDS:
    raise ValueError(f"unknown head kind {spec.kind!r}; valid: {', '.join(KINDS)}, "
                     "'dense128', 'dense256', 'dense512'")
  if spec.pool not in ("avg", "flatten"):
    raise ValueError(f"unknown head pool {spec.pool!r}; valid: 'avg', 'flatten'")
  return spec


class Head(nn.Module):
  """Pool the (B, h, w, C) features, then linear / dense+act+dropout / seed-002 MLP."""
  spec: HeadSpec
  num_classes: int
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x, train: bool = False):
    if x.ndim == 4:
      x = jnp.mean(x, axis=(1, 2)) if self.spec.pool == "avg" else x.reshape(x.shape[0], -1)
    if self.spec.input_dropout:
      x = nn.Dropout(self.spec.input_dropout, deterministic=not train)(x)
    if self.spec.kind in ("dense", "mlp"):
      x = self.act(nn.Dense(self.spec.hidden, name="hidden")(x))
      if self.spec.kind == "mlp":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         name="bn")(x)
      x = nn.Dropout(self.spec.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="predictions")(x)

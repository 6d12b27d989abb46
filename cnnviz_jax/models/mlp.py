"""'mlp': a fully connected net on the flattened image (Ross et al.'s decoy-MNIST model).

Ross, Hughes & Doshi-Velez, "Right for the Right Reasons: Training Differentiable Models by
Constraining their Explanations", IJCAI 2017 (arXiv:1703.03717), section 4: a multilayer
perceptron with two hidden layers of 50 and 30 ReLU units, trained with Adam. Here the
hidden layers are 'dense1', 'dense2', … and the classifier is the usual 'head' (linear by
default), so transfer, freezing and the input explainers work as for every model. It has no
spatial layer: the CAM explainers and the report's Grad-CAM sections do not apply.
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnviz_jax.models import heads
from cnnviz_jax.models.registry import register


class MLP(nn.Module):
  hidden: Sequence[int]
  num_classes: int
  head: heads.HeadSpec
  act: Callable = nn.relu
  dtype: Any = jnp.float32
  input_size: int = 28

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for i, width in enumerate(self.hidden, start=1):
      x = self.act(nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x))
    x = heads.Head(self.head, self.num_classes, self.act, name="head")(x, train=train)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


@register("mlp")
def mlp(num_classes=1000, head=None, hidden=(50, 30), **options):
  return MLP(hidden=tuple(hidden), num_classes=num_classes,
             head=heads.head_spec(head, heads.HeadSpec("linear")), **options)

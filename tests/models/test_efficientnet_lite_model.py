"""EfficientNet-Lite's training-only parts, which the reference comparisons (eval mode) do not
see: the own head's dropout and stochastic depth on the residual branches."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.models import efficientnet_lite


def test_own_head_dropout_is_the_builders_and_is_swappable():
  for arch, rate in [("efficientnet_lite0", 0.2), ("efficientnet_lite2", 0.3)]:
    assert cj.models.create(arch).head == cj.models.HeadSpec("linear", input_dropout=rate)
  assert cj.models.create("efficientnet_lite0", head="dense128").head.input_dropout == 0.0


@pytest.mark.slow
def test_dropout_and_stochastic_depth_act_only_in_training():
  x = jnp.asarray(np.random.RandomState(0).randn(2, 32, 32, 3), jnp.float32)
  # narrow and shallow (fast to compile); depth 0.5 keeps 3 residual blocks, the only ones
  # stochastic depth drops (rates 0.9 · i / 10 for the i-th block: not to miss by chance)
  model = efficientnet_lite.EfficientNetLite(
      width=0.25, depth=0.5, num_classes=3, drop_connect_rate=0.9,
      head=cj.models.HeadSpec("linear", input_dropout=0.2))
  variables = jax.jit(model.init)(jax.random.key(0), x)

  def train(m):
    f = jax.jit(lambda key: m.apply(variables, x, train=True, rngs={"dropout": key},
                                    mutable=["batch_stats"])[0])
    return f(jax.random.key(1)), f(jax.random.key(2))

  evaluate = jax.jit(lambda v: model.apply(v, x))
  np.testing.assert_array_equal(evaluate(variables), evaluate(variables))
  assert not np.allclose(*train(model))
  no_head_dropout = model.clone(head=cj.models.HeadSpec("linear"))
  assert not np.allclose(*train(no_head_dropout))  # stochastic depth alone
  np.testing.assert_array_equal(*train(no_head_dropout.clone(drop_connect_rate=0.0)))

"""Schedules, optimizers and freezing against their definitions."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import cnnviz_jax as cj
from cnnviz_jax.train import freeze, optimizers, schedules


def _cfg(**kw):
  return ml_collections.ConfigDict(kw)


def test_triangular_cyclic_lr_matches_smith_2017():
  """Smith's reference: cycle = floor(1 + it/(2s)); x = |it/s - 2 cycle + 1|;
  lr = base + (max - base) * max(0, 1 - x)."""
  base, top, s = 5e-8, 3e-3, 7
  schedule = schedules.make(_cfg(name="cyclic", min_lr=base, max_lr=top, step_size_epochs=1), s, 100)
  for it in range(60):
    cycle = np.floor(1 + it / (2 * s))
    x = abs(it / s - 2 * cycle + 1)
    np.testing.assert_allclose(float(schedule(it)), base + (top - base) * max(0.0, 1 - x),
                               rtol=1e-6, atol=1e-12)


def test_warmup_cosine_and_piecewise():
  warm = schedules.make(_cfg(name="warmup_cosine", lr=1.0, warmup_epochs=1), 10, 110)
  assert float(warm(0)) == 0.0 and abs(float(warm(10)) - 1.0) < 1e-6
  np.testing.assert_allclose(float(warm(60)), 0.5 * (1 + np.cos(np.pi * 0.5)), rtol=1e-5)
  step = schedules.make(_cfg(name="piecewise", lr=0.1, boundaries_epochs=[2, 4],
                             decay_factor=0.1), 10, 100)
  assert [round(float(step(i)), 6) for i in (19, 20, 39, 40)] == [0.1, 0.01, 0.01, 0.001]


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(ValueError, match="valid: constant, warmup_cosine, piecewise, cyclic"):
    schedules.make(_cfg(name="exp", lr=1.0), 1, 1)
  with pytest.raises(ValueError, match="valid: sgd, adam, adamw, radam, rmsprop"):
    optimizers.make(_cfg(name="lamb"), 0.1)


def test_sgd_nesterov_step_equals_its_formula():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 0.25])}
  tx = optimizers.make(_cfg(name="sgd", momentum=0.9, nesterov=True), 0.1)
  state = tx.init(params)
  updates, state = tx.update(grads, state, params)
  # momentum buffer v = g; nesterov update = -lr (g + mu v)
  np.testing.assert_allclose(updates["w"], -0.1 * (grads["w"] + 0.9 * grads["w"]), rtol=1e-6)


def test_weight_decay_skips_biases_and_batchnorm():
  params = {"conv": {"kernel": jnp.ones((3, 3, 1, 1)), "bias": jnp.ones((1,))},
            "bn": {"scale": jnp.ones((1,))}}
  zeros = jax.tree.map(jnp.zeros_like, params)
  tx = optimizers.make(_cfg(name="sgd", weight_decay=0.5), 1.0)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates["conv"]["kernel"], -0.5)
  assert float(jnp.abs(updates["conv"]["bias"]).max()) == 0.0
  assert float(jnp.abs(updates["bn"]["scale"]).max()) == 0.0


@pytest.fixture(scope="module")
def resnet():
  model = cj.models.create("resnet18", num_classes=3)
  return model, jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 32, 32, 3)))


@pytest.fixture(scope="module")
def resnet_params(resnet):
  return resnet[1]["params"]


def test_regex_freeze_and_frozen_params_carry_no_optimizer_state(resnet_params):
  mask = freeze.trainable_mask(resnet_params, freeze=[r"^(?!head/)"])
  flat = jax.tree_util.tree_flatten_with_path(mask)[0]
  assert all(m == (jax.tree_util.keystr(p).startswith("['head']")) for p, m in flat)
  trainable, frozen = freeze.split(resnet_params, mask)
  state = jax.eval_shape(optimizers.make(_cfg(name="adam"), 1e-3).init, trainable)
  moments = [x for x in jax.tree.leaves(state) if x.ndim > 0]
  assert sum(x.size for x in moments) == 2 * (512 * 3 + 3)  # mu and nu of the head only
  merged = freeze.merge(trainable, frozen)
  assert jax.tree.structure(merged) == jax.tree.structure(resnet_params)


def test_freeze_fraction_freezes_the_first_layers_in_forward_order(resnet):
  model, variables = resnet
  order = cj.models.module_order(model, variables)
  mask = freeze.trainable_mask(variables["params"], freeze_fraction=0.9, module_order=order)
  flat = {"/".join(k.key for k in p): m for p, m in jax.tree_util.tree_flatten_with_path(mask)[0]}
  assert not flat["stem/conv1/kernel"] and not flat["layer3/block1/conv2/kernel"]
  assert flat["layer4/block1/bn2/scale"] and flat["head/predictions/kernel"]
  owners = {tuple(k.split("/")[:-1]) for k in flat}
  layers = [p for p in order if p in owners and p[0] != "head"]
  assert len(layers) == 40  # resnet18: 20 convs (17 + 3 downsample) and their 20 BNs
  frozen_layers = {k.rsplit("/", 1)[0] for k, m in flat.items() if not m}
  assert len(frozen_layers) == int(0.9 * len(layers))
  # forward order: the frozen ones are exactly the first 36
  assert frozen_layers == {"/".join(p) for p in layers[:36]}


def test_a_freeze_rule_that_matches_nothing_is_an_error(resnet_params):
  with pytest.raises(ValueError, match=r"'backbone/' matches no parameter; paths look like head/predictions/bias"):
    freeze.trainable_mask(resnet_params, freeze=["backbone/"])


def test_frozen_batchnorm_in_training_equals_eval_mode_batchnorm():
  from cnnviz_jax.train import steps  # pylint: disable=import-outside-toplevel
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 4, 4, 4))
  x = jnp.asarray(np.random.RandomState(0).randn(4, 32, 32, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  variables["batch_stats"] = jax.tree.map(lambda v: v + 0.3, variables["batch_stats"])
  with nn.intercept_methods(steps.batchnorm_interceptor(batch_statistics=False)):
    frozen, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(frozen, model.apply(variables, x, train=False), atol=1e-5)

"""The explanation penalty: its definition, its gradient, the jitted step, and config errors."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
import runs
from cnnviz_jax.data import layout
from cnnviz_jax.train import explanation_loss, from_config, optimizers, steps, validate
from cnnviz_jax.train import mesh as mesh_lib
from configs import default


@pytest.fixture(scope="module")
def tiny():
  """small_cnn_bn (3 classes, widths 4-8-8-8) at 16 px, 4 images, masks and labels."""
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 8, 8, 8))
  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.rand(4, 16, 16, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  variables["batch_stats"] = jax.tree_util.tree_map_with_path(  # running != batch statistics
      lambda path, v: v * jnp.asarray(rng.uniform(0.5, 2, v.shape), v.dtype)
      if "var" in jax.tree_util.keystr(path) else v + jnp.asarray(rng.uniform(-0.1, 0.1, v.shape),
                                                                   v.dtype),
      variables["batch_stats"])
  mask = np.zeros((4, 16, 16), np.float32)
  for i in range(4):
    mask[i, 2 + i:9 + i, 3:12 - i] = 1
  return model, variables, x, jnp.asarray(mask), jnp.asarray([0, 2, 1, 2])


@pytest.mark.slow
def test_input_gradient_penalty_is_ross_et_al_term_on_the_trained_function(tiny):
  """Σ ((1 − m) ∂/∂x_n Σ_k log p_nk)², each image's own gradient, BatchNorm normalizing with
  the batch's statistics as the cross-entropy's forward pass does, held constant (or the
  running ones with freeze_bn). Not the gradient of the batch's summed score through the
  statistics: that one carries every other image's loss, and BatchNorm's backward removes
  the batch mean of the gradient flowing into it, so a network can cancel it on a feature all
  images share while each image's own gradient stays large."""
  model, variables, x, mask, labels = tiny
  spec = dict(kind="input_gradient", target="log_prob_sum")
  log_probs = lambda z, v: jnp.sum(jax.nn.log_softmax(model.apply(v, z)))
  for train, statistics in ((True, helpers.with_batch_statistics(model, variables, x)),
                            (False, variables)):
    expected = np.sum(((1 - mask)[..., None] * jax.grad(log_probs)(x, statistics)) ** 2,
                      axis=(1, 2, 3))
    ours = explanation_loss.per_example(spec, model, variables, x, 1 - mask, labels,
                                        batch_statistics=train)
    assert float(expected.min()) > 0
    np.testing.assert_allclose(ours, expected, rtol=1e-4, err_msg=f"train={train}")
  through = lambda z: jnp.sum(jax.nn.log_softmax(
      model.apply(variables, z, train=True, mutable=["batch_stats"])[0]))
  summed = np.sum(((1 - mask)[..., None] * jax.grad(through)(x)) ** 2, axis=(1, 2, 3))
  own = explanation_loss.per_example(spec, model, variables, x, 1 - mask, labels)
  assert np.all(summed < 0.5 * np.asarray(own))  # through the statistics: far smaller


def test_each_log_prob_penalizes_every_class_s_input_gradient(tiny):
  """target 'each_log_prob': Σ_k Σ ((1 − m) ∂/∂x_n log p_nk)², one gradient per class, so no
  class's probability may move with the region (a single scalar, Σ_k log p_k or one logit,
  leaves the others free); normalize=True: the squared share of Σ_k a_k² outside."""
  model, variables, x, mask, labels = tiny
  for train, statistics in ((True, helpers.with_batch_statistics(model, variables, x)),
                            (False, variables)):
    log_prob = lambda z, k, v=statistics: jnp.sum(jax.nn.log_softmax(model.apply(v, z))[:, k])
    energy = sum(np.square(jax.grad(log_prob)(x, k)) for k in range(3))  # (B, H, W, C)
    expected = np.sum((1 - mask)[..., None] ** 2 * energy, axis=(1, 2, 3))
    spec = dict(kind="input_gradient", target="each_log_prob")
    ours = explanation_loss.per_example(spec, model, variables, x, 1 - mask, labels,
                                        batch_statistics=train)
    assert float(expected.min()) > 0
    np.testing.assert_allclose(ours, expected, rtol=1e-4, err_msg=f"train={train}")
    share = np.sum((1 - mask)[..., None] * energy, axis=(1, 2, 3)) / np.sum(energy, (1, 2, 3))
    ours = explanation_loss.per_example({**spec, "normalize": True}, model, variables, x,
                                        1 - mask, labels, batch_statistics=train)
    np.testing.assert_allclose(ours, share ** 2, rtol=1e-4, err_msg=f"train={train}")


def test_each_log_prob_sampled_is_an_unbiased_estimate_of_each_log_prob(tiny):
  """target 'each_log_prob_sampled': Σ ((1 − m) ∂/∂x_n Σ_k s_nk log p_nk)², the signs s_nk =
  ±1 drawn afresh per image and key. Every draw is one of the 2^K sign patterns' values, each
  image draws its own, and their mean is each_log_prob's Σ_k Σ ((1 − m) ∂ log p_k/∂x)²."""
  model, variables, x, mask, labels = tiny
  statistics = helpers.with_batch_statistics(model, variables, x)
  log_prob = lambda z, k: jnp.sum(jax.nn.log_softmax(model.apply(statistics, z))[:, k])
  grads = np.stack([jax.grad(log_prob)(x, k) for k in range(3)], 1)  # (B, K, H, W, C)
  signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T  # (8, K)
  mask = np.asarray(mask)
  patterns = np.sum(((1 - mask)[:, None, ..., None]
                     * np.einsum("sk,bkhwc->bshwc", signs, grads)) ** 2, axis=(2, 3, 4))
  spec = dict(kind="input_gradient", target="each_log_prob_sampled")
  draw = jax.jit(lambda key: explanation_loss.per_example(spec, model, variables, x, 1 - mask,
                                                          labels, key=key))
  draws = np.stack([draw(jax.random.key(i)) for i in range(256)])  # (256, B)
  distance = np.abs(draws[..., None] - patterns[None])  # (256, B, 8)
  np.testing.assert_allclose(distance.min(-1), 0, atol=1e-4 * patterns.max())
  which = distance.argmin(-1)  # (256, B) the pattern drawn
  assert all(len(set(which[:, n])) >= 3 for n in range(4))  # fresh signs per key
  assert np.mean(which[:, 0] == which[:, 1]) < 0.6  # each image its own signs
  exact = explanation_loss.per_example(dict(spec, target="each_log_prob"), model, variables, x,
                                       1 - mask, labels)
  np.testing.assert_allclose(patterns.mean(1), exact, rtol=1e-4)
  spread = patterns.std(1) / np.sqrt(len(draws))
  assert np.all(np.abs(draws.mean(0) - exact) < 5 * spread + 1e-6)


def test_normalized_penalties_are_the_squared_share_of_energy_outside(tiny):
  """normalize=True: (Σ (1 − m) a² / Σ a²)², with a the label logit's input gradient; and
  integrated gradients by their definition sampled at α ~ U(0, 1) per image, x · ∇S(αx),
  with BatchNorm normalizing every αx by the statistics of the batch x (as training sees x),
  or by the running ones with freeze_bn."""
  model, variables, x, mask, labels = tiny

  def logit_gradient(z, variables):  # each image's own, BatchNorm on variables' statistics
    score = lambda z: jnp.sum(jnp.take_along_axis(model.apply(variables, z), labels[:, None], 1))
    return jax.grad(score)(z)

  of_x = helpers.with_batch_statistics(model, variables, x)

  def share_outside(a):
    energy = np.sum(np.asarray(a) ** 2, -1)
    return (energy * (1 - np.asarray(mask))).sum((1, 2)) / energy.sum((1, 2))

  spec = dict(kind="input_gradient", target="label", normalize=True)
  outside = 1 - mask  # the penalized region of 'outside_object'
  np.testing.assert_allclose(explanation_loss.per_example(spec, model, variables, x, outside,
                                                          labels),
                             share_outside(logit_gradient(x, of_x)) ** 2, rtol=1e-4)
  key = jax.random.key(3)
  alpha = jax.random.uniform(key, (4, 1, 1, 1))
  assert float(alpha.max() - alpha.min()) > 0.1  # a different point of the path per image
  spec = dict(kind="integrated_gradients", target="label", normalize=True)
  for train, statistics in ((True, of_x), (False, variables)):
    sampled = x * logit_gradient(alpha * x, statistics)
    np.testing.assert_allclose(
        explanation_loss.per_example(spec, model, variables, x, outside, labels, key=key,
                                     batch_statistics=train),
        share_outside(sampled) ** 2, rtol=1e-4, err_msg=f"batch statistics: {train}")


def test_grad_cam_penalty_is_the_squared_mass_outside_at_the_layer_resolution(tiny):
  model, variables, x, mask, labels = tiny
  spec = dict(kind="grad_cam", layer="block4_conv1", target="predicted")  # random net: the
  ours = explanation_loss.per_example(spec, model, variables, x, 1 - mask, labels,  # top-1 map
                                      batch_statistics=False)  # is the one sure to be non-zero
  heat = np.asarray(cj.explain.grad_cam(model, variables, x, "block4_conv1"))  # 4×4
  assert heat.shape == (4, 4, 4)
  cover = np.asarray(mask).reshape(4, 4, 4, 4, 4).mean(axis=(2, 4))  # 4×4-pixel cells
  inside = (heat * cover).sum((1, 2)) / heat.sum((1, 2))
  assert 0.05 < inside.min() and inside.max() < 0.95
  np.testing.assert_allclose(ours, (1 - inside) ** 2, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", explanation_loss.KINDS)
def test_every_kind_has_a_parameter_gradient_that_matches_finite_differences(tiny, kind):
  model, variables, x, mask, labels = tiny
  layer = "" if kind in explanation_loss.INPUT_KINDS else "block3_conv1"
  spec = dict(kind=kind, weight=1.0, layer=layer, target="label")
  with jax.enable_x64(True):
    model64 = model.clone(dtype=jnp.float64)
    v64, x64, m64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (variables, x, mask))
    penalty = explanation_loss.make(spec, model64)
    batch = {"image": x64, "object_mask": m64, "label": labels}
    loss = lambda p: penalty({**v64, "params": p}, batch, jnp.ones(4, jnp.float64),
                             jax.random.key(5))
    grads = jax.jit(jax.grad(loss))(v64["params"])
    rng = np.random.RandomState(1)
    direction = jax.tree.map(lambda p: jnp.asarray(rng.randn(*p.shape)), grads)
    eps = 1e-6  # small: ReLU kinks must not be crossed
    shift = lambda s: jax.tree.map(lambda p, d: p + s * eps * d, v64["params"], direction)
    numeric = (loss(shift(1)) - loss(shift(-1))) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                   jax.tree.leaves(direction)))
    assert abs(float(analytic)) > 1e-8
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


def _state_and_step(model, variables, weight, kind="grad_cam"):
  """The loop's own state and jitted step: SGD without momentum at a constant 0.1."""
  config = default.get_config()
  config.explanation_loss.update(kind=kind, weight=weight, layer="", target="label")
  stage = default.stage(optimizer="sgd", lr=0.1, schedule="constant")
  stage.optimizer.momentum = 0.0
  fresh = jax.tree.map(jnp.array, variables)  # copies: the jitted step donates its state
  mesh = mesh_lib.make_mesh()
  return from_config.stage_state_and_step(
      config, stage, model, fresh, jax.tree.map(lambda _: True, variables["params"]),
      first_step=0, rng=jax.random.PRNGKey(0), steps_per_epoch=1,
      shardings=(mesh_lib.replicated(mesh), layout.batch_sharding(mesh)))


@pytest.mark.slow
def test_the_jitted_step_adds_the_penalty_and_weight_zero_is_plain_training(tiny):
  model, variables, x, mask, labels = tiny
  batch = {"image": x, "label": labels, "object_mask": mask}
  plain_state, plain = _state_and_step(model, variables, 0.0)
  plain_state, plain_metrics = plain(plain_state, batch)
  reference = jax.jit(steps.make_train_step(model, optimizers.make(ml_collections.ConfigDict(
      {"name": "sgd", "momentum": 0.0}), 0.1), jax.tree.map(lambda _: True, variables["params"])))
  ref_state, ref_metrics = reference(_state_and_step(model, variables, 0.0)[0], batch)
  jax.tree.map(np.testing.assert_array_equal, plain_state.params, ref_state.params)
  state, step = _state_and_step(model, variables, 5.0)
  state, metrics = step(state, batch)
  assert float(metrics["explanation_loss"]) > 0
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"] + metrics["explanation_loss"],
                             rtol=1e-6)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params, ref_state.params)
  assert max(jax.tree.leaves(moved)) > 1e-6


def test_bad_explanation_loss_configs_name_the_field_and_the_valid_values():
  config = runs.tiny_config("unused")
  config.explanation_loss.kind = "gradcam"
  with pytest.raises(ValueError, match=r"config.explanation_loss.kind: unknown kind 'gradcam'; "
                                       r"valid: input_gradient, gradient_x_input, "
                                       r"integrated_gradients, grad_cam"):
    validate.validate(config)
  config.explanation_loss.update(kind="grad_cam", layer="block9")
  with pytest.raises(ValueError, match=r"\(SmallCNN\): unknown layer\(s\) \['block9'\]; "
                                       r"valid layers: block1_conv1, block1, block2_conv1, block2, "
                                       r"block3_conv1, block4_conv1"):
    validate.validate(config)
  config.explanation_loss.update(kind="input_gradient", layer="block2")
  with pytest.raises(ValueError, match="layer is for the CAM kinds"):
    validate.validate(config)
  config.explanation_loss.update(layer="", target="logit")
  with pytest.raises(ValueError, match="target: unknown target 'logit'; valid: label, "
                                       "predicted, log_prob_sum"):
    validate.validate(config)
  config.explanation_loss.update(target="label", weight=-1.0)
  with pytest.raises(ValueError, match="weight must be a number >= 0"):
    validate.validate(config)
  config.explanation_loss.update(kind="grad_cam", target="each_log_prob", weight=1.0)
  with pytest.raises(ValueError, match="'each_log_prob' is for the input kinds"):
    validate.validate(config)
  config.explanation_loss.update(kind="grad_cam", target="each_log_prob_sampled")
  with pytest.raises(ValueError, match="'each_log_prob_sampled' is for the input kinds"):
    validate.validate(config)
  config.explanation_loss.update(kind="input_gradient", normalize=True)
  with pytest.raises(ValueError, match="with normalize=True use target 'each_log_prob'"):
    validate.validate(config)
  config.explanation_loss.update(normalize=False, target="label")
  with pytest.raises(ValueError, match="normalize must be True or False"):  # a plain dict
    explanation_loss.check(dict(kind="input_gradient", weight=1.0, normalize="yes"), None, ())
  config.explanation_loss.weight = 1.0
  validate.validate(config)  # now fine
  config.feature_extraction = True
  with pytest.raises(ValueError, match="cannot train on cached features"):
    validate.validate(config)

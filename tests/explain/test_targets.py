"""Every target form, several targets from one forward pass, and the bad-target errors."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain import gradients, targets

E = cj.explain


@pytest.fixture(scope="module")
def cams(tiny):
  model, variables, x = tiny
  run = jax.jit(functools.partial(E.grad_cam, model, layer="block4_conv1"),
                static_argnames="target")
  return lambda target: np.asarray(run(variables, x, target=target))


@pytest.fixture(scope="module")
def logits(tiny):
  model, variables, x = tiny
  return np.asarray(model.apply(variables, x))


def test_all_class_cam_row_k_is_grad_cam_for_k(cams):
  every = cams("all")
  assert every.shape == (2, 4, 8, 8)
  for k in range(4):
    np.testing.assert_allclose(every[:, k], cams(k), rtol=1e-5, atol=1e-6)


def test_all_class_cam_in_chunks_equals_one_vmap(tiny):
  model, variables, x = tiny
  chunked = E.grad_cam(model, variables, x, "block4_conv1", "all", target_chunk=3)
  np.testing.assert_allclose(chunked, E.grad_cam(model, variables, x, "block4_conv1", "all"),
                             rtol=1e-5, atol=1e-6)


def test_none_is_top1_and_lists_stack_single_targets(cams, logits):
  top1 = logits.argmax(-1)
  per_image = np.stack([cams(int(c))[i] for i, c in enumerate(top1)])
  np.testing.assert_allclose(cams(None), per_image, rtol=1e-5, atol=1e-6)
  listed = cams((2, 0))
  assert listed.shape == (2, 2, 8, 8)
  np.testing.assert_allclose(listed[:, 0], cams(2), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(listed[:, 1], cams(0), rtol=1e-5, atol=1e-6)


def test_top_k_is_the_k_best_classes(tiny, logits):
  model, variables, x = tiny
  best = E.grad_cam(model, variables, x, "block4_conv1", E.top_k(2))
  order = np.argsort(-logits, axis=-1)[:, :2]
  explicit = E.grad_cam(model, variables, x, "block4_conv1", jnp.asarray(order))
  np.testing.assert_allclose(best, explicit, rtol=1e-5, atol=1e-6)


def test_per_image_classes_and_score_functions(tiny, cams):
  model, variables, x = tiny
  per_image = E.grad_cam(model, variables, x, "block4_conv1", np.array([3, 1]))
  np.testing.assert_allclose(per_image[0], cams(3)[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(per_image[1], cams(1)[1], rtol=1e-5, atol=1e-6)
  by_fn = E.grad_cam(model, variables, x, "block4_conv1", lambda out: out[:, 2])
  np.testing.assert_allclose(by_fn, cams(2), rtol=1e-5, atol=1e-6)
  several = E.grad_cam(model, variables, x, "block4_conv1", lambda out: out[:, jnp.array([1, 3])])
  np.testing.assert_allclose(several, cams((1, 3)), rtol=1e-5, atol=1e-6)
  mix = E.grad_cam(model, variables, x, "block4_conv1", lambda out: out[:, 0] - out[:, 1])
  assert mix.shape == (2, 8, 8) and bool(jnp.all(mix >= 0))  # a class mix


@pytest.mark.parametrize("bad,match", [
    (4, "out of range"), (-1, "out of range"), ([0, 9], "out of range"),
    (np.array([0, 1, 2]), r"shape \(B,\) or \(B, K\)"), (np.array([0.5, 1.0]), "integer"),
    ("every", "unknown target"), ([], "non-empty"), (["a"], "non-empty list of ints"),
    (2.5, "unsupported target"), (True, "unsupported target"),
    (lambda out: out[None], r"return \(B,\) or \(B, K\)"), (lambda out: out.sum(), "return"),
])
def test_bad_targets_raise_with_the_valid_forms(tiny, bad, match):
  model, variables, x = tiny
  with pytest.raises((ValueError, TypeError), match=match):
    E.grad_cam(model, variables, x, "block4_conv1", bad)


def test_bad_top_k():
  with pytest.raises(ValueError, match="k >= 1"):
    E.top_k(0)
  with pytest.raises(ValueError, match="only 4 outputs"):
    targets.resolve(E.top_k(5), jnp.zeros((2, 4)))


def test_a_neuron_target_is_a_class_of_the_layer_channel_scores(tiny):
  """gradient of neuron(layer, c) = gradient of the channel's sum (or value at (y, x))."""
  model, variables, x = tiny

  def channel(z, position=None):
    acts = cj.models.apply_with_taps(model, variables, z, ["block2"])[1]["block2"]
    return (acts[:, position[0], position[1], 3] if position else acts[..., 3].sum((1, 2))).sum()

  whole, at = targets.neuron("block2", 3), targets.neuron("block2", 3, (2, 5))
  np.testing.assert_allclose(gradients.gradient(model, variables, x, whole),
                             jax.grad(channel)(x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(gradients.gradient(model, variables, x, at),
                             jax.grad(lambda z: channel(z, (2, 5)))(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,match", [
    (lambda: targets.neuron(3, 0), "layer name"),
    (lambda: targets.neuron("block2", 0, (1,)), r"\(y, x\)"),
    (lambda: targets.neuron("nowhere", 0), "unknown layer"),
    (lambda: targets.neuron("block2", 32), "out of range"),  # block2 has 32 channels
    (lambda: targets.neuron("block2", np.array([0, 1, 2])), r"shape \(B,\)"),
])
def test_bad_neuron_targets_raise(tiny, make, match):
  model, variables, x = tiny
  with pytest.raises(ValueError, match=match):
    gradients.gradient(model, variables, x, make())


def test_a_neuron_target_needs_its_layer_scores():
  with pytest.raises(ValueError, match="scores_fn"):
    targets.resolve(targets.neuron("block2", 0), jnp.zeros((2, 4)))

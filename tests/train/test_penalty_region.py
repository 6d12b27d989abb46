"""config.explanation_loss.region: the penalized region A is 1 − object mask
('outside_object') or the data's ignore mask ('annotated'), under one definition."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
from cnnviz_jax.errors import ConfigError
from cnnviz_jax.train import explanation_loss


@pytest.fixture(scope="module")
def tiny():
  """small_cnn_bn (3 classes, widths 4-8-8-8) at 16 px, 4 images, labels, a batch with an
  object mask and an ignore mask (a top-right block, not the object's complement)."""
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 8, 8, 8))
  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.rand(4, 16, 16, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  obj, ignore = np.zeros((2, 4, 16, 16), np.float32)
  for i in range(4):
    obj[i, 3 + i:10 + i, 4:12 - i] = 1
    ignore[i, :6 + i, 6:16] = 1  # overlaps the object: the regions are independent
  batch = {"image": x, "label": jnp.asarray([0, 2, 1, 2]), "object_mask": jnp.asarray(obj),
           "ignore_mask": jnp.asarray(ignore)}
  return model, variables, batch


def _log_prob_gradient(model, variables, x):
  """∂/∂x_n Σ_k log p_nk, each image's own, BatchNorm normalizing with the batch's statistics
  held constant."""
  statistics = helpers.with_batch_statistics(model, variables, x)
  total = lambda z: jnp.sum(jax.nn.log_softmax(model.apply(statistics, z)))
  return np.asarray(jax.grad(total)(x))


@pytest.mark.parametrize("region,mask", [("annotated", "ignore_mask"),
                                         ("outside_object", "object_mask")])
def test_input_gradient_penalty_is_lambda_times_the_mean_of_ross_terms(tiny, region, mask):
  model, variables, batch = tiny
  spec = dict(kind="input_gradient", weight=7.0, target="log_prob_sum", region=region)
  weights = jnp.asarray([1.0, 1.0, 0.0, 1.0])  # row 2 is padding
  ours = explanation_loss.make(spec, model)(variables, batch, weights, jax.random.key(0))
  area = np.asarray(batch[mask]) if region == "annotated" else 1 - np.asarray(batch[mask])
  terms = np.sum((area[..., None] * _log_prob_gradient(model, variables, batch["image"])) ** 2,
                 axis=(1, 2, 3))
  assert terms.min() > 0
  np.testing.assert_allclose(ours, 7.0 * terms[[0, 1, 3]].mean(), rtol=1e-4)


def test_one_definition_an_ignore_mask_outside_the_object_is_the_same_penalty(tiny):
  model, variables, batch = tiny
  complement = {**batch, "ignore_mask": 1 - batch["object_mask"]}
  for kind in ("input_gradient", "grad_cam"):
    base = dict(kind=kind, weight=1.0, target="label", layer="" if kind == "input_gradient"
                else "block4_conv1")
    outside, annotated = (explanation_loss.make({**base, "region": r}, model)(
        variables, complement, jnp.ones(4), jax.random.key(0))
        for r in ("outside_object", "annotated"))
    np.testing.assert_allclose(outside, annotated, rtol=1e-6)


def test_grad_cam_penalty_is_the_squared_share_of_the_map_in_the_annotated_region(tiny):
  model, variables, batch = tiny
  spec = dict(kind="grad_cam", layer="block4_conv1", target="predicted", region="annotated")
  ours = explanation_loss.per_example(spec, model, variables, batch["image"],
                                      batch["ignore_mask"], batch["label"],
                                      batch_statistics=False)
  heat = np.asarray(cj.explain.grad_cam(model, variables, batch["image"], "block4_conv1"))
  cover = np.asarray(batch["ignore_mask"]).reshape(4, 4, 4, 4, 4).mean(axis=(2, 4))
  share = (heat * cover).sum((1, 2)) / heat.sum((1, 2))
  assert share.min() > 0.01
  np.testing.assert_allclose(ours, share ** 2, rtol=1e-5)


def test_a_bad_region_is_a_config_error_naming_the_field():
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 8, 8, 8))
  spec = dict(kind="input_gradient", weight=1.0, layer="", target="label", normalize=False,
              region="patch")
  with pytest.raises(ConfigError, match=r"config.explanation_loss.region: unknown region "
                                        r"'patch'; valid: outside_object, annotated"):
    explanation_loss.check(spec, model, (1, 16, 16, 3))

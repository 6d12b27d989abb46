"""The model registry, heads and the model contract every family keeps."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj

FAMILIES = [("resnet18", 32), ("resnet50", 32), ("resnet50_keras", 32), ("vgg11_bn", 32),
            ("efficientnet_lite0", 32),
            ("small_cnn", 48), ("selu_cnn", 32), ("small_cnn_bn", 32)]


def test_available_lists_every_design_name():
  names = cj.models.available()
  for expected in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_keras",
                   "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn",
                   "vgg16_keras", "vgg19_keras", "small_cnn", "selu_cnn", "small_cnn_bn"]:
    assert expected in names


def test_unknown_model_lists_the_available_ones():
  with pytest.raises(ValueError, match=r"unknown model 'resnet51'; valid: .*resnet50.*vgg16"):
    cj.models.create("resnet51")


@pytest.mark.parametrize("head", ["nope", {"kind": "dense", "widht": 3}, 3])
def test_bad_head_is_refused_with_the_valid_choices(head):
  with pytest.raises((ValueError, TypeError), match=r"valid|must be"):
    cj.models.create("resnet18", head=head)


@pytest.mark.parametrize("name,size", FAMILIES)
@pytest.mark.parametrize("head", [None, "linear", "dense256", "mlp"])
def test_any_backbone_with_any_head_and_class_count(name, size, head):
  options = {"input_size": size} if name.startswith("s") else {}
  model = cj.models.create(name, num_classes=3, head=head, **options)
  x = jnp.ones((2, size, size, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  out = jax.eval_shape(lambda v: model.apply(v, x), variables)
  assert out.shape == (2, 3)
  head_params = variables["params"]["head"]
  if head == "dense256":
    assert head_params["hidden"]["kernel"].shape[-1] == 256
  if head == "mlp":  # seed 002: features -> 512 -> BN -> dropout -> classes
    assert head_params["hidden"]["kernel"].shape[-1] == 512 and "bn" in head_params


def test_small_cnn_is_the_seed_001_network():
  """Chollet's cats-vs-dogs net: 150 px, 3×3 valid convs 32-64-128-128, Flatten 7·7·128, 512."""
  model = cj.models.create("small_cnn", num_classes=1)
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 150, 150, 3)))
  params = variables["params"]
  assert [params[f"block{i}_conv1"]["conv"]["kernel"].shape[-1] for i in range(1, 5)] == [
      32, 64, 128, 128]
  assert params["head"]["hidden"]["kernel"].shape == (7 * 7 * 128, 512)
  # Keras' model.summary() for this net: 3,453,121 parameters with a 1-unit output
  assert sum(np.prod(p.shape) for p in jax.tree.leaves(params)) == 3_453_121


def test_dropout_is_active_only_in_training():
  model = cj.models.create("small_cnn", num_classes=2, dropout=0.5, filters=(4, 4, 4, 4),
                           input_size=48)
  x = jnp.asarray(np.random.RandomState(0).rand(2, 48, 48, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x))
  a = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  b = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(a, b)


def test_batchnorm_uses_running_statistics_in_eval_and_batch_statistics_in_training():
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 4, 4, 4))
  x = jnp.asarray(np.random.RandomState(0).randn(4, 32, 32, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  # eval: an image's logits do not depend on the rest of the batch
  np.testing.assert_allclose(model.apply(variables, x)[:1], model.apply(variables, x[:1]),
                             atol=1e-5)
  _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
  before = variables["batch_stats"]["block1_conv1"]["bn"]["mean"]
  after = updates["batch_stats"]["block1_conv1"]["bn"]["mean"]
  assert not np.allclose(before, after)


def test_activation_is_swappable_without_touching_parameters():
  model = cj.models.create("resnet18", num_classes=3)
  x = jnp.asarray(np.random.RandomState(0).randn(1, 32, 32, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  swapped = model.clone(act=nn.gelu)
  assert jax.tree.structure(jax.eval_shape(swapped.init, jax.random.key(0), x)) == \
      jax.tree.structure(variables)
  apply = lambda m: jax.jit(m.apply)(variables, x)  # noqa: E731  one compile, not op by op
  assert not np.allclose(apply(model), apply(swapped))
  np.testing.assert_allclose(apply(model), apply(model.clone(act=jax.nn.relu)), atol=1e-6)


def test_a_config_head_is_read_as_its_fields():
  """`config.model.head` as a ConfigDict of HeadSpec fields (seeds 000, 003) or its JSON dict."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  fields = dict(kind="mlp", hidden=16, dropout=0.3)
  for head in (ml_collections.ConfigDict(fields), fields):
    model = cj.models.create("small_cnn_bn", num_classes=3, head=head)
    assert model.head == cj.models.HeadSpec(**fields)

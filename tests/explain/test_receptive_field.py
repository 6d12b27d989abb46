"""Receptive fields: analytic (jaxpr walk) == empirical (gradient support) == published.

Published values: Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019, computed with their library; the per-end-point table is
google-research/receptive_field, receptive_field/RECEPTIVE_FIELD_TABLE.md (TF-Slim models).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.explain.receptive_field import (ReceptiveField, empirical_receptive_fields,
                                                gradient_support, receptive_field,
                                                receptive_fields)

# vgg_16 rows of RECEPTIVE_FIELD_TABLE.md at 224 px (size, effective stride, effective padding);
# slim 'SAME' 3x3 convs pad 1 like torchvision, so every end-point must match exactly.
VGG16_PUBLISHED = {
    "block1_conv1": 3, "block1": 6, "block2_conv1": 10, "block2": 16, "block3_conv1": 24,
    "block3_conv2": 32, "block3": 44, "block4_conv1": 60, "block4_conv2": 76, "block4": 100,
    "block5_conv1": 132, "block5_conv2": 164, "block5": 212}
VGG16_STRIDE_PADDING = {
    "block1_conv1": (1, 1), "block1": (2, 2), "block2_conv1": (2, 4), "block2": (4, 6),
    "block3_conv1": (4, 10), "block3_conv2": (4, 14), "block3": (8, 18), "block4_conv1": (8, 26),
    "block4_conv2": (8, 34), "block4": (16, 42), "block5_conv1": (16, 58),
    "block5_conv2": (16, 74), "block5": (32, 90)}


def _square(size, stride, padding):
  return ReceptiveField((size, size), (stride, stride), (padding, padding))


def test_vgg16_every_published_end_point():
  model = cj.models.create("vgg16", num_classes=5, head="linear")
  got = receptive_fields(model, list(VGG16_PUBLISHED))
  for layer, size in VGG16_PUBLISHED.items():
    assert got[layer] == _square(size, *VGG16_STRIDE_PADDING[layer]), layer


def test_keras_resnet50_matches_published_resnet_v1_50():
  # resnet_v1_50 at 321 px (odd sizes: slim's 'SAME' pads symmetrically, like Keras'
  # explicit ZeroPadding): block4 483 / 32 / 241; blocks 1-3 sizes 35 / 99 / 291 with
  # padding 17 / 49 / 145. Slim strides in the *last* unit of a block, Keras in the first,
  # so the intermediate strides are one stage apart (see the table's FAQ); sizes agree.
  model = cj.models.create("resnet50_keras", num_classes=5)
  got = receptive_fields(model)
  assert got["layer4"] == _square(483, 32, 241)
  assert [got[f"layer{i}"].size[0] for i in (1, 2, 3)] == [35, 99, 291]
  assert [got[f"layer{i}"].padding[0] for i in (1, 2, 3)] == [17, 49, 145]
  assert [got[f"layer{i}"].stride[0] for i in (1, 2, 3)] == [4, 8, 16]


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [
    # torchvision layout (stride on the first block's 3x3), from the closed form of
    # Araujo et al. eq. (2) r = 1 + sum (k_l - 1) prod_{i<l} s_i; the same sizes are quoted
    # for torchvision in https://gist.github.com/samson-wang/a6073c18f2adf16e0ab5fb95b53db3e6
    ("resnet18", {"stem": (11, 4, 5), "layer1": (43, 4, 21), "layer2": (99, 8, 49),
                  "layer3": (211, 16, 105), "layer4": (435, 32, 217)}),
    ("resnet50", {"stem": (11, 4, 5), "layer1": (35, 4, 17), "layer2": (91, 8, 45),
                  "layer3": (267, 16, 133), "layer4": (427, 32, 213)}),
    # 3x3 'valid' convs + 2x2 pools (seed 001's net): no padding anywhere
    ("small_cnn", {"block1_conv1": (3, 1, 0), "block1": (4, 2, 0), "block2": (10, 4, 0),
                   "block4": (46, 16, 0)}),
    ("small_cnn_bn", {"block1": (4, 2, 1), "block2": (10, 4, 3), "block4_conv1": (26, 4, 11)}),
])
def test_published_and_closed_form_values(name, expected):
  model = cj.models.create(name, num_classes=5)
  got = receptive_fields(model, list(expected))
  for layer, values in expected.items():
    assert got[layer] == _square(*values), layer
  assert receptive_field(model, layer) == got[layer]  # the one-layer form agrees


# Empirical cross-check: one trace + one batched backward per group; each group's input is
# the smallest that holds the three unit ends the measurement needs (it raises otherwise).
@pytest.mark.slow
@pytest.mark.parametrize("name, groups", [
    ("small_cnn_bn", {32: None}),
    ("small_cnn", {96: None}),
    ("selu_cnn", {96: None}),
    ("resnet18", {64: ["stem", "layer1", "layer2"], 256: ["layer3", "layer4"]}),
    ("resnet50", {64: ["stem", "layer1", "layer2"], 256: ["layer3", "layer4"]}),
    ("vgg16", {64: [f"block{b}{s}" for b in (1, 2, 3) for s in ("_conv1", "_conv2", "_conv3", "")
                    if (b, s) not in ((1, "_conv3"), (2, "_conv3"))],
               96: ["block4_conv1", "block4_conv2", "block4_conv3", "block4"],
               160: ["block5_conv1", "block5_conv2", "block5_conv3", "block5"]}),
    # ReLU6 saturates: the measurement must not lose the paths whose sums pass 6
    ("efficientnet_lite0", {64: ["stem", "block1", "block2"], 128: ["block3"],
                            256: ["block4"]}),
])
def test_analytic_equals_gradient_support_on_every_layer(name, groups):
  model = cj.models.create(name, num_classes=5, head="linear")
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only, any input size
  covered = []
  for size, layers in groups.items():
    shape = (1, size, size, 3)
    measured = empirical_receptive_fields(model, layers, variables, input_shape=shape)
    assert receptive_fields(model, list(measured), variables, input_shape=shape) == measured
    covered += list(measured)
  if name != "efficientnet_lite0":  # its deeper fields outgrow any input worth measuring
    assert covered == cj.models.layer_names(model, variables, x)


def test_support_is_the_analytic_box_clipped_at_the_border():
  model = cj.models.create("small_cnn_bn", num_classes=5)
  field = receptive_field(model, "block2")
  units = [(0, 0), (3, 5), (7, 7)]
  masks = gradient_support(model, {"block2": units}, input_shape=(1, 32, 32, 3))["block2"]
  for unit, mask in zip(units, masks):
    box = np.zeros((32, 32), bool)
    (r0, r1), (c0, c1) = field.region(unit)
    box[max(r0, 0):r1, max(c0, 0):c1] = True
    np.testing.assert_array_equal(mask, box)


class _Odd(nn.Module):
  """Dilated, anisotropic, asymmetrically padded, misaligned branches, TF 'SAME' pool."""
  act = nn.relu
  input_size = 40

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(_Conv(4, (3, 4), (1, 2), ((2, 0), (1, 3)), (2, 1), name="dilated")(x))
    x = _Branches(name="branches")(x)
    x = _Pool(name="pool")(x)
    return nn.Dense(3, name="head")(x.mean((1, 2)))


class _Conv(nn.Module):
  features: int
  kernel: tuple
  strides: tuple
  padding: tuple
  dilation: tuple

  @nn.compact
  def __call__(self, x):
    return nn.Conv(self.features, self.kernel, self.strides, self.padding,
                   kernel_dilation=self.dilation)(x)


class _Branches(nn.Module):
  @nn.compact
  def __call__(self, x):
    a = nn.Conv(4, (3, 3), padding=((1, 1), (1, 1)))(x)
    b = nn.Conv(4, (1, 1))(x)  # then shifted down 3 rows: sees rows above the 3x3 branch
    b = jnp.pad(b, ((0, 0), (3, 0), (0, 0), (0, 0)))[:, :-3]
    return nn.relu(a + b)


class _Pool(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.max_pool(nn.avg_pool(x, (2, 3), (2, 2), padding="SAME"), (1, 1))


def test_dilated_asymmetric_and_misaligned_case():
  model = _Odd()
  # by hand, per axis (rows, cols); unit i covers [i*stride + lo, i*stride + hi]:
  # dilated: rows k=3 d=2 pad 2 -> [-2, 2]; cols k=4 s=2 pad 1 -> [-1, 2] stride 2
  # branches: 3x3 -> rows [-3, 3] cols [-3, 4]; 1x1 shifted 3 rows -> rows [-5, -1]; union
  # pool (2, 3) stride 2 'SAME' on 38x21: pads rows 0, cols 1 before -> rows [-5, 4], cols [-5, 6]
  expected = {"dilated": ReceptiveField((5, 4), (1, 2), (2, 1)),
              "branches": ReceptiveField((9, 8), (1, 2), (5, 3)),
              "pool": ReceptiveField((10, 12), (2, 4), (5, 5))}
  assert receptive_fields(model) == expected
  assert empirical_receptive_fields(model, input_shape=(1, 40, 40, 3)) == expected


class _SqueezeExcite(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(4, (3, 3), name="conv")(x)
    x = _Gate(name="gated")(x)
    return nn.Dense(2, name="head")(x.mean((1, 2)))


class _Gate(nn.Module):
  @nn.compact
  def __call__(self, x):
    return x * nn.sigmoid(x.mean((1, 2), keepdims=True))


def test_errors_name_the_problem():
  model = _SqueezeExcite()
  assert receptive_field(model, "conv", input_shape=(1, 16, 16, 3)).size == (3, 3)
  with pytest.raises(ValueError, match="global.*whole input"):
    receptive_field(model, "gated", input_shape=(1, 16, 16, 3))
  with pytest.raises(ValueError, match="valid layers: conv, gated"):
    receptive_field(model, "nope", input_shape=(1, 16, 16, 3))
  with pytest.raises(ValueError, match="too small"):
    empirical_receptive_fields(cj.models.create("resnet18", num_classes=2), ["layer4"],
                               input_shape=(1, 64, 64, 3))


def test_region_follows_araujo_center_formula():
  # center = -padding + i*stride + (size - 1)/2 (Araujo et al., README of the library)
  field = _square(212, 32, 90)
  (r0, r1), _ = field.region((3, 0))
  assert (r0 + r1 - 1) / 2 == -90 + 3 * 32 + (212 - 1) / 2

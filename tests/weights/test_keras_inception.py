"""InceptionV3, Xception, InceptionResNetV2 from Keras files equal keras.applications.

As in test_keras.py: keras.applications models with weights=None, randomized (kernels,
biases, BN beta/gamma *and* moving statistics), saved as the legacy .h5 that
keras.applications downloads and as Keras 3 .weights.h5, converted with
cj.weights.from_keras; the logits and every top-level block must match Keras' own
layer outputs. Inputs are 75 px (InceptionV3/IRv2's minimum; Xception's is 71) so
the big models stay fast; at 75 Xception's stride-2 'same' pools meet odd and even
sizes, so TF's asymmetric padding is exercised.
"""
import flax
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
from cnnviz_jax.weights.keras import convert_layers, from_keras, read_layers
from test_keras import (  # pylint: disable=import-error
    _randomize, save_legacy_h5, without_layer_names)

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE, BATCH = 75, 2
_KERAS = {"inception_v3": "InceptionV3", "xception": "Xception",
          "inception_resnet_v2": "InceptionResNetV2"}


def _second_max_pool(model):  # the stems end at the second (unnamed) MaxPooling2D
  return [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)][1].output


def _keras_taps(arch, model):
  """Our block name -> the Keras tensor it must equal, from Keras' layer names."""
  if arch == "inception_v3":
    return {"stem": _second_max_pool(model),
            **{f"mixed{i}": model.get_layer(f"mixed{i}").output for i in range(11)}}
  if arch == "xception":  # blocks 2-13 end at an unnamed add: the next block's input
    taps = {"block1": model.get_layer("block1_conv2_act").output}
    taps.update({f"block{b}": model.get_layer(f"block{b + 1}_sepconv1_act").input
                 for b in range(2, 13)})
    taps["block13"] = model.get_layer("block14_sepconv1").input
    taps["block14"] = model.get_layer("block14_sepconv2_act").output
    return taps
  taps = {"stem": _second_max_pool(model), "mixed_5b": model.get_layer("mixed_5b").output}
  for kind, count, reduction in (("block35", 10, None), ("block17", 20, "mixed_6a"),
                                 ("block8", 10, "mixed_7a")):
    if reduction:
      taps[reduction] = model.get_layer(reduction).output
    taps.update({f"{kind}_{i}": model.get_layer(f"{kind}_{i}_ac").output
                 for i in range(1, count + (kind != "block8"))})
  taps["block8_10"] = model.get_layer("conv_7b").input  # no activation after the last block
  taps["conv_7b"] = model.get_layer("conv_7b_ac").output
  return taps


class Reference:
  """A randomized Keras model at SIZE px and its outputs on fixed inputs; `files` (layout ->
  weight file) is attached by the `reference` fixture."""

  def __init__(self, arch, seed):
    keras.utils.set_random_seed(seed)
    self.arch = arch
    self.model = _randomize(getattr(keras.applications, _KERAS[arch])(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None), seed)
    taps = _keras_taps(arch, self.model)
    extractor = keras.Model(self.model.inputs[0], [*taps.values(), self.model.output])
    self.x = np.random.RandomState(seed).uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    *acts, logits = (keras.ops.convert_to_numpy(y) for y in extractor(self.x, training=False))
    self.logits, self.taps = logits, dict(zip(taps, acts))
    self.converted = None

  def convert(self):
    """from_keras of the legacy file, converted once."""
    if self.converted is None:
      self.converted = from_keras(self.arch, self.files["legacy"])
    return self.converted


def _assert_same_arrays(arch, path, variables):
  """The file's converted arrays are exactly `variables` (from_keras less its shape checks,
  which tracing the big models makes slow)."""
  converted = convert_layers(arch, read_layers(path, arch))[0]
  helpers.assert_trees_equal(flax.traverse_util.unflatten_dict(converted), variables)


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(_KERAS))
def test_every_block_and_logits_equal_keras(arch, reference):
  """The legacy file's conversion runs against Keras; the Keras 3 file's must be identical
  (read by class order: Keras 3 saves the unnamed layers as 'conv2d_k' by model order)."""
  ref = reference(arch)
  variables, meta = ref.convert()
  _assert_same_arrays(arch, ref.files["keras3"], variables)
  model = cj.models.create(arch)
  logits, taps = cj.models.apply_with_taps(model, variables, ref.x, list(ref.taps))
  # the blocks, in forward order, are exactly the Keras layers above: every block is checked
  assert cj.models.layer_names(model, variables, ref.x) == list(ref.taps)
  for name in ref.taps:  # in forward order, so the first failure is the diverging block
    helpers.assert_close_at_scale(name, taps[name], ref.taps[name])
  helpers.assert_close_at_scale("logits", logits, ref.logits)
  assert (meta.arch, meta.source, meta.num_classes) == (arch, "keras", 1000)
  assert (meta.normalization, meta.input_size) == ("tf", 299)


def test_keras3_files_without_layer_names_and_keras_files_give_the_same_variables(
    reference, scratch):
  """Xception mixes named and unnamed layers: names are checked, order is used."""
  ref = reference("xception")
  expected, _ = ref.convert()
  unnamed = without_layer_names(ref.files["keras3"], scratch / "unnamed.weights.h5")
  ref.model.save(scratch / "model.keras")
  for path in (unnamed, scratch / "model.keras"):
    _assert_same_arrays("xception", path, expected)


def test_include_top_false_files_give_the_backbone(reference, scratch):
  """A Keras 3 notop model's file and a legacy file without avg_pool/predictions."""
  keras.utils.set_random_seed(7)
  notop = _randomize(keras.applications.Xception(weights=None, include_top=False,
                                                  input_shape=(SIZE, SIZE, 3)), 7)
  notop.save_weights(scratch / "xception_notop.weights.h5")
  backbone, meta = from_keras("xception", scratch / "xception_notop.weights.h5")
  assert "head" not in backbone["params"] and meta.num_classes == 0
  np.testing.assert_array_equal(  # separable conv: Keras (3, 3, C, 1) -> Flax (3, 3, 1, C)
      backbone["params"]["block14"]["sepconv2"]["depthwise"]["kernel"][:, :, 0, :],
      notop.get_layer("block14_sepconv2").get_weights()[0][:, :, :, 0])
  shortcut13, = [layer for layer in notop.layers  # unnamed: placed by its class order
                 if layer.weights and tuple(layer.weights[0].shape) == (1, 1, 728, 1024)]
  np.testing.assert_array_equal(backbone["params"]["block13"]["residual"]["conv"]["kernel"],
                                shortcut13.get_weights()[0])
  ref = reference("inception_v3")
  save_legacy_h5(ref.model, scratch / "v3_notop.h5", skip=("avg_pool", "predictions"))
  backbone, meta = from_keras("inception_v3", scratch / "v3_notop.h5")
  full, _ = ref.convert()
  assert "head" not in backbone["params"] and meta.num_classes == 0
  helpers.assert_trees_equal(backbone, {collection: {k: v for k, v in tree.items() if k != "head"}
                                        for collection, tree in full.items()})


def test_a_file_of_another_architecture_is_refused_naming_its_layers(reference):
  with pytest.raises(ValueError, match=r"layer\(s\) that are not part of keras.applications"
                                       r".InceptionV3 \(another architecture\?\): block1_conv1"):
    from_keras("inception_v3", reference("xception").files["legacy"])
  # IRv2 starts with InceptionV3's unnamed stem: its named layers are where the files part
  with pytest.raises(ValueError, match=r"layer\(s\) that are not part of keras.applications"
                                       r".InceptionV3 \(another architecture\?\): "
                                       r"[^\n]*block35_1_conv, "):
    from_keras("inception_v3", reference("inception_resnet_v2").files["legacy"])


@pytest.mark.parametrize("arch", list(_KERAS))
def test_meta_preprocess_equals_keras_preprocess_input(arch):
  images = np.random.RandomState(3).randint(0, 256, (2, 9, 7, 3)).astype(np.uint8)
  expected = getattr(keras.applications, arch).preprocess_input(images.copy())
  meta = cj.weights.meta.imagenet_meta(arch, "keras", 1000)
  np.testing.assert_array_equal(meta.preprocess(images), expected)

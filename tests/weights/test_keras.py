"""Keras -> Flax conversion equals keras.applications: logits and every block's output.

The references are keras.applications models with weights=None, randomized
(He-scaled kernels, random biases, BN affine *and* moving statistics), saved in
each file layout users have, then converted with cj.weights.from_keras.
"""
import h5py
import jax
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
from cnnviz_jax.weights.keras import from_keras

keras = pytest.importorskip("keras")
# Raised inside Keras' TF backend (np.array on its variables under numpy 2), not by us.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

_KERAS = {"resnet50_keras": "ResNet50", "vgg16_keras": "VGG16", "vgg19_keras": "VGG19"}
_RESNET_TAPS = {"stem": "pool1_pool", "layer1": "conv2_block3_out", "layer2": "conv3_block4_out",
                "layer3": "conv4_block6_out", "layer4": "conv5_block3_out"}
LAYOUTS = ("legacy", "keras3")


def _vgg_taps(arch):
  """Our tap -> Keras layer: every conv (with its ReLU) and every block's pool."""
  convs = {"vgg16_keras": (2, 2, 3, 3, 3), "vgg19_keras": (2, 2, 4, 4, 4)}[arch]
  taps = {}
  for b, n in enumerate(convs, start=1):
    taps.update({f"block{b}_conv{i}": f"block{b}_conv{i}" for i in range(1, n + 1)})
    taps[f"block{b}"] = f"block{b}_pool"
  return taps


_BN_RANGES = {"gamma": (0.5, 1.5), "beta": (-0.5, 0.5), "moving_mean": (-1, 1),
              "moving_variance": (0.5, 2)}


def _randomize(model, seed):
  """He-scaled kernels, small biases, BN affine and moving statistics (gamma when it has one)."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    values = []
    for w in layer.weights:  # by name: conv/dense/separable kernels, optional bias and gamma
      if w.name in _BN_RANGES:
        values.append(rng.uniform(*_BN_RANGES[w.name], w.shape).astype(np.float32))
      elif w.name == "bias":
        values.append(rng.uniform(-0.1, 0.1, w.shape).astype(np.float32))
      else:  # kernel (…, in, out), pointwise_kernel (1, 1, in, out), depthwise (kH, kW, in, 1)
        fan_in = np.prod(w.shape[:2] if w.name == "depthwise_kernel" else w.shape[:-1])
        values.append(rng.standard_normal(w.shape, np.float32) * np.float32(np.sqrt(2 / fan_in)))
    if values:
      layer.set_weights(values)
  return model


def save_legacy_h5(model, path, skip=()):
  """The layout of keras.applications' downloaded .h5 (Keras 3's save_weights cannot write it):
  root attrs layer_names/backend/keras_version, one group per layer with attrs
  weight_names ('conv1_conv/kernel:0', …) and the arrays under those names."""
  layers = [layer for layer in model.layers if layer.name not in skip]
  with h5py.File(path, "w") as f:
    # np.asarray of bytes: fixed-length 'S' arrays, as Keras 2 stored them
    f.attrs["layer_names"] = np.asarray([layer.name.encode("utf8") for layer in layers])
    f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
    for layer in layers:
      group = f.create_group(layer.name)
      names = [f"{layer.name}/{w.name}:0".encode("utf8") for w in layer.weights]
      group.attrs["weight_names"] = np.asarray(names, dtype="S")
      for name, value in zip(names, layer.get_weights()):
        group.create_dataset(name, data=value)


class Reference:
  """A randomized Keras model and its outputs on fixed inputs; `files` (layout -> weight file)
  is attached by the `reference` fixture."""

  def __init__(self, arch, seed):
    keras.utils.set_random_seed(seed)
    self.arch = arch
    self.model = _randomize(getattr(keras.applications, _KERAS[arch])(
        weights=None, classifier_activation=None), seed)
    self.taps = _RESNET_TAPS if arch.startswith("resnet") else _vgg_taps(arch)
    self.outputs = {}

  def forward(self, size, batch):
    """-> (x, logits, {our tap name: Keras activation}) at size×size, computed once."""
    if (size, batch) not in self.outputs:
      self.outputs[size, batch] = self._forward(size, batch)
    return self.outputs[size, batch]

  def _forward(self, size, batch):
    model = self.model
    if size != model.input_shape[1]:  # the same weights in a model built for `size`
      model = getattr(keras.applications, _KERAS[self.arch])(
          weights=None, input_shape=(size, size, 3), classifier_activation=None)
      model.set_weights(self.model.get_weights())
    extractor = keras.Model(model.inputs[0], [model.get_layer(k).output for k in self.taps.values()]
                            + [model.output])
    # ×50: about the range of caffe-preprocessed pixels
    x = np.random.RandomState(size).randn(batch, size, size, 3).astype(np.float32) * 50
    *acts, logits = (keras.ops.convert_to_numpy(y) for y in extractor(x, training=False))
    return x, logits, dict(zip(self.taps, acts))


def _check_against_keras(ref, layout, size, batch):
  """Converts ref's `layout` file and compares every tap, then the logits, with Keras."""
  x, ref_logits, ref_taps = ref.forward(size, batch)
  variables, meta = from_keras(ref.arch, ref.files[layout])
  model = cj.models.create(ref.arch)
  logits, taps = cj.models.apply_with_taps(model, variables, x, list(ref_taps))
  assert list(ref_taps) == cj.models.layer_names(model, variables, x)  # every block is checked
  for name in ref_taps:  # in forward order, so the first failure is the diverging block
    helpers.assert_close_at_scale(f"{layout} {name}", taps[name], ref_taps[name])
  helpers.assert_close_at_scale(f"{layout} logits", logits, ref_logits)
  assert meta.arch == ref.arch and meta.source == "keras" and meta.num_classes == 1000


@pytest.mark.parametrize("layout", LAYOUTS)
def test_resnet50_every_block_and_logits_equal_keras_at_64px(layout, reference):
  _check_against_keras(reference("resnet50_keras"), layout, size=64, batch=2)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_resnet50_full_size_224_equal_keras(layout, reference):
  _check_against_keras(reference("resnet50_keras"), layout, size=224, batch=1)


@pytest.mark.parametrize("layout", LAYOUTS)
# VGG-16 last: the next two tests read its files
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg19_keras", "vgg16_keras"])
def test_vgg_every_block_and_logits_equal_keras(arch, layout, reference):
  # 224×224 only: Keras' Flatten fixes the input size
  _check_against_keras(reference(arch), layout, size=224, batch=1)


def without_layer_names(keras3_file, path):
  """A copy of a Keras 3 .weights.h5 without the layer names older Keras 3 did not store."""
  path.write_bytes(keras3_file.read_bytes())
  with h5py.File(path, "r+") as f:
    for group in f["layers"].values():
      if "vars" in group:
        group["vars"].attrs.pop("name", None)
  return path


@pytest.mark.parametrize("module", ["resnet50", "vgg16", "vgg19"])
def test_meta_preprocess_equals_keras_preprocess_input(module, reference):
  images = np.random.RandomState(4).randint(0, 256, (2, 9, 7, 3)).astype(np.uint8)
  expected = getattr(keras.applications, module).preprocess_input(images.copy())
  _, meta = from_keras("vgg16_keras", reference("vgg16_keras").files["keras3"])
  assert meta.normalization == "caffe"
  ours = meta.preprocess(images)
  assert ours.dtype == np.float32
  np.testing.assert_array_equal(ours, expected)  # the same float32 ops, so bit-exact


def test_weights_of_another_arch_are_refused(reference):
  vgg16 = reference("vgg16_keras").files["legacy"]
  with pytest.raises(ValueError, match=r"layer\(s\) of keras.applications.VGG19 missing(.|\n)*"
                                       r"block3_conv4 \(-> block3_conv4/conv\)"):
    from_keras("vgg19_keras", vgg16)
  with pytest.raises(ValueError, match=r"15 layer\(s\) that are not part of keras.applications."
                                       r"ResNet50 \(another architecture\?\): block1_conv1"):
    from_keras("resnet50_keras", vgg16)


def test_every_keras_file_kind_gives_the_same_variables(reference, scratch):
  """Keras 3 files without layer names (older Keras 3), model.save('.h5') and '.keras'."""
  ref = reference("resnet50_keras")
  expected, _ = from_keras("resnet50_keras", ref.files["legacy"])
  unnamed = without_layer_names(ref.files["keras3"], scratch / "unnamed.weights.h5")
  ref.model.save(scratch / "model.h5")
  ref.model.save(scratch / "model.keras")
  for path in (ref.files["keras3"], unnamed, scratch / "model.h5", scratch / "model.keras"):
    variables, _ = from_keras("resnet50_keras", path)
    helpers.assert_trees_equal(variables, expected)


def test_include_top_false_gives_the_backbone_for_transfer(reference, scratch):
  """A notop file (no classifier) -> backbone only; transfer puts it under a new head."""
  keras.utils.set_random_seed(5)
  notop = _randomize(keras.applications.VGG16(weights=None, include_top=False), 5)
  notop.save_weights(scratch / "vgg16_notop.weights.h5")
  backbone, meta = from_keras("vgg16_keras", scratch / "vgg16_notop.weights.h5")
  assert "head" not in backbone["params"] and meta.num_classes == 0
  model = cj.models.create("vgg16_keras", num_classes=5, head="linear")
  variables, report = cj.weights.transfer(backbone, model, jax.random.key(0),
                                          jax.ShapeDtypeStruct((1, 32, 32, 3), np.float32))
  assert report.new == ("params/head/predictions/bias", "params/head/predictions/kernel")
  assert len(report.loaded) == 26 and not report.dropped
  np.testing.assert_array_equal(variables["params"]["block5_conv3"]["conv"]["kernel"],
                                notop.get_layer("block5_conv3").get_weights()[0])
  ref = reference("resnet50_keras")  # and a legacy notop file: all but avg_pool/predictions
  save_legacy_h5(ref.model, scratch / "r50_notop.h5", skip=("avg_pool", "predictions"))
  backbone, meta = from_keras("resnet50_keras", scratch / "r50_notop.h5")
  assert "head" not in backbone["params"] and meta.num_classes == 0
  np.testing.assert_array_equal(backbone["batch_stats"]["layer4"]["block2"]["bn3"]["var"],
                                ref.model.get_layer("conv5_block3_3_bn").get_weights()[3])


def _copy(src, dst):
  dst.write_bytes(src.read_bytes())
  return dst


def test_fine_tuned_class_count_is_read_from_the_file(reference, scratch):
  path = _copy(reference("resnet50_keras").files["legacy"], scratch / "seven.h5")
  with h5py.File(path, "r+") as f:
    group = f["predictions"]["predictions"]
    for name, shape in (("kernel:0", (2048, 7)), ("bias:0", (7,))):
      del group[name]
      group[name] = np.ones(shape, np.float32)
  variables, meta = from_keras("resnet50_keras", path)
  assert meta.num_classes == 7 and meta.class_names[0] == "class_0"
  assert variables["params"]["head"]["predictions"]["kernel"].shape == (2048, 7)


def test_unknown_arch_lists_the_available_ones(reference):
  with pytest.raises(ValueError, match=r"unknown Keras arch 'resnet50'; valid: "
                                       r"resnet50_keras, vgg16_keras, vgg19_keras"):
    from_keras("resnet50", reference("resnet50_keras").files["legacy"])


def test_missing_layer_is_named(reference, scratch):
  path = _copy(reference("resnet50_keras").files["legacy"], scratch / "missing.h5")
  with h5py.File(path, "r+") as f:
    del f["conv3_block2_2_bn"]
    f.attrs["layer_names"] = [n for n in f.attrs["layer_names"] if n != b"conv3_block2_2_bn"]
  with pytest.raises(ValueError, match=r"1 layer\(s\) of keras.applications.ResNet50 missing "
                                       r"from the file:\n  conv3_block2_2_bn \(-> layer2/block1/bn2\)"):
    from_keras("resnet50_keras", path)


def test_shape_mismatch_names_both_sides_and_both_shapes(reference, scratch):
  path = _copy(reference("resnet50_keras").files["keras3"], scratch / "bad.weights.h5")
  with h5py.File(path, "r+") as f:
    group = next(g["vars"] for g in f["layers"].values()
                 if "vars" in g and g["vars"].attrs.get("name") == "conv3_block1_2_conv")
    del group["0"]
    group["0"] = np.zeros((1, 1, 128, 128), np.float32)
  with pytest.raises(ValueError, match=r"shape mismatch: conv3_block1_2_conv/kernel \[.*\] -> "
                                       r"params/layer2/block0/conv2/kernel: source \(1, 1, 128, "
                                       r"128\), model \(3, 3, 128, 128\)"):
    from_keras("resnet50_keras", path)


def test_a_file_that_is_not_keras_weights_is_refused(scratch):
  with h5py.File(scratch / "other.h5", "w") as f:
    f["data"] = np.zeros(3)
  with pytest.raises(ValueError, match=r"not a Keras weights file(.|\n)*top-level keys: \['data'\]"):
    from_keras("vgg16_keras", scratch / "other.h5")
  (scratch / "weights.pth").write_bytes(b"PK-not-really")
  with pytest.raises(ValueError, match=r"neither HDF5 \(Keras \.h5 / \.weights\.h5\) nor a \.keras"):
    from_keras("vgg16_keras", scratch / "weights.pth")
  with pytest.raises(FileNotFoundError, match="no Keras weights file at"):
    from_keras("vgg16_keras", scratch / "absent.h5")


def test_tf_mode_equals_keras_inception_preprocess_input():
  images = np.random.RandomState(5).randint(0, 256, (2, 9, 7, 3)).astype(np.uint8)
  expected = keras.applications.inception_v3.preprocess_input(images.copy())
  meta = cj.weights.WeightsMeta("inception_v3", "keras", "tf")
  np.testing.assert_array_equal(meta.preprocess(images), expected)

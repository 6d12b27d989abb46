"""keras.applications weight files (.h5, .weights.h5, .keras) -> Flax variables.

The table (Keras stores weights per layer, in this order):
  Conv2D              kernel (kH, kW, I, O), bias  -> params/…/kernel, bias (already HWIO)
  Dense               kernel (I, O), bias          -> params/…/kernel, bias (as is)
  BatchNormalization  gamma, beta                  -> params/…/scale, bias
                      moving_mean, moving_variance -> batch_stats/…/mean, var
  VGG's Flatten is NHWC in Keras and here, so fc1 needs no permutation.
Layer names: ResNet50 'conv1_conv|bn' -> 'stem/conv1|bn1',
'conv{s}_block{j}_{k}_conv|bn' -> 'layer{s-1}/block{j-1}/conv{k}|bn{k}', with k=0 (the
projection shortcut) -> 'downsample_conv|bn'; VGG 'block{b}_conv{i}' -> 'block{b}_conv{i}/conv';
'fc1', 'fc2', 'predictions' -> 'head/…'.

InceptionV3, Xception and InceptionResNetV2 (keras_inception.py) leave most layers
unnamed, so they are read by position, as Keras reads them.

File layouts, read by Keras layer name:
  legacy .h5 (what keras.applications downloads, tf.keras `save_weights('x.h5')`,
    `model.save('x.h5')` under 'model_weights'): root attrs `layer_names`, one group per
    layer with attrs `weight_names`, read in that order (as Keras loads them).
  Keras 3 .weights.h5 (and the one inside a .keras zip): 'layers/<class>[_k]/vars/{0,1,…}',
    the layer name in `vars.attrs['name']`. Files without that attribute (older Keras 3,
    tf.keras 2.13+) are read as Keras reads them: the k-th layer of each class in the
    model's layer order (`keras_layers`; checked against Keras 3.15).
Files without the classifier (include_top=False) give the backbone only: no 'head'
subtree and a meta with 0 classes; `cj.weights.transfer` places it under a new head.
"""
import contextlib
import io
import os
import re
import zipfile
from typing import Any

import h5py
import numpy as np

from cnnviz_jax import models
from cnnviz_jax.errors import UserInputError, check_one_of
from cnnviz_jax.models import vgg as vgg_family
from cnnviz_jax.weights import keras_inception
from cnnviz_jax.weights import meta as meta_lib
from cnnviz_jax.weights import tree

ARCHS = ("resnet50_keras", "vgg16_keras", "vgg19_keras", *keras_inception.ARCHS)
_KERAS_NAMES = {"resnet50_keras": "ResNet50", "vgg16_keras": "VGG16", "vgg19_keras": "VGG19",
                **keras_inception.KERAS_NAMES}

# kind -> ((Keras weight, Flax collection, Flax name), …) in Keras' storage order
_FIELDS = {
    "conv": (("kernel", "params", "kernel"), ("bias", "params", "bias")),
    "dense": (("kernel", "params", "kernel"), ("bias", "params", "bias")),
    "bn": (("gamma", "params", "scale"), ("beta", "params", "bias"),
           ("moving_mean", "batch_stats", "mean"), ("moving_variance", "batch_stats", "var")),
    **keras_inception.FIELDS,  # conv without bias, BN without gamma, separable conv
}
_KERAS_CLASS = {"conv": "conv2d", "dense": "dense", "bn": "batch_normalization",
                **keras_inception.KERAS_CLASS}

Layer = tuple[str, str, tuple[str, ...]]  # (Keras layer name, kind, Flax module path)
# deflate inflates at most ~1032-fold: a member or dataset claiming more is a bomb
_MAX_EXPANSION = 1100


def keras_layers(arch: str) -> list[Layer]:
  """The weighted layers of keras.applications `arch`, in the Keras model's layer order.

  Only the order within each kind matters: older Keras 3 files are named by it.
  """
  if arch in keras_inception.ARCHS:  # unnamed layers, matched by position
    return keras_inception.keras_layers(arch)
  if arch == "resnet50_keras":
    table = [("conv1_conv", "conv", ("stem", "conv1")), ("conv1_bn", "bn", ("stem", "bn1"))]
    for s, blocks in enumerate((3, 4, 6, 3), start=2):
      for j in range(1, blocks + 1):
        # model.layers goes by depth: a first block's shortcut (k=0) sits beside k=3.
        for k in (1, 2, 0, 3) if j == 1 else (1, 2, 3):
          conv, bn = ("downsample_conv", "downsample_bn") if k == 0 else (f"conv{k}", f"bn{k}")
          block = (f"layer{s - 1}", f"block{j - 1}")
          table += [(f"conv{s}_block{j}_{k}_conv", "conv", (*block, conv)),
                    (f"conv{s}_block{j}_{k}_bn", "bn", (*block, bn))]
    return table + [("predictions", "dense", ("head", "predictions"))]
  table = []
  for b, convs in enumerate(vgg_family._CONFIGS[int(arch[3:5])], start=1):  # pylint: disable=protected-access
    table += [(f"block{b}_conv{i}", "conv", (f"block{b}_conv{i}", "conv"))
              for i in range(1, convs + 1)]
  return table + [(name, "dense", ("head", name)) for name in ("fc1", "fc2", "predictions")]


def _strings(group, name: str) -> list[str]:
  """A list-of-strings attribute, also when Keras split it into name0, name1, …."""
  if name in group.attrs:
    chunks = [group.attrs[name]]
  else:
    chunks, i = [], 0
    while f"{name}{i}" in group.attrs:
      chunks.append(group.attrs[f"{name}{i}"])
      i += 1
  strings = [s for c in chunks for s in np.atleast_1d(c).ravel()]
  if not all(isinstance(s, (str, bytes)) for s in strings):
    raise UserInputError(f"attribute {name} of {group.name} is not a list of names")
  return [s.decode("utf8") if isinstance(s, bytes) else str(s) for s in strings]


def _child(group, path: str, optional: bool = False):
  """group[path] through hard links only, as Keras' own loader reads (saving_lib's
  safe_get_h5_group): a soft or external link (to another HDF5 file) is refused."""
  node = group
  for part in path.split("/"):
    link = node.get(part, getlink=True) if part else None
    if link is None:
      if optional:
        return None
      raise UserInputError(f"{node.name} has no member {path!r}")
    if not isinstance(link, h5py.HardLink):
      raise UserInputError(f"{node.name}/{part} is a link ({type(link).__name__}): weights are "
                           "read from the file's own groups only")
    node = node[part]
  return node


def _dataset(group, path: str) -> np.ndarray:
  """The numbers of dataset group[path], read only if the file itself stores them: no external
  or virtual storage (its bytes would come from other files), and no more bytes than the file
  holds for it (a shape declared over unwritten chunks is a memory bomb), compressed at most
  _MAX_EXPANSION-fold. Keras' safe_get_h5_dataset refuses the same, more leniently."""
  dataset = _child(group, path)
  if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiub":
    raise UserInputError(f"{dataset.name} is not an array of numbers")
  if dataset.external or dataset.is_virtual:
    raise UserInputError(f"{dataset.name} stores its data in other files")
  declared, stored = dataset.size * dataset.dtype.itemsize, dataset.id.get_storage_size()
  compressed = dataset.id.get_create_plist().get_nfilters() > 0
  if declared > stored * (_MAX_EXPANSION if compressed else 1):
    raise UserInputError(f"{dataset.name} declares shape {dataset.shape} ({declared} bytes); "
                         f"the file stores {stored} bytes of it")
  return dataset[()]


def _read_legacy(group) -> dict[str, list[tuple[str, np.ndarray]]]:
  """{layer: [(weight name, array), …]} from a layer_names/weight_names group."""
  out = {}
  for layer in _strings(group, "layer_names"):
    weights = [(w if w.startswith(layer + "/") else f"{layer}/{w}", _dataset(group, f"{layer}/{w}"))
               for w in _strings(_child(group, layer), "weight_names")]
    if weights:
      out[layer] = weights
  return out


def _class_order(key: str) -> tuple[str, int]:
  """'batch_normalization_12' -> ('batch_normalization', 12); 'conv2d' -> ('conv2d', 0)."""
  m = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
  return m.group(1), int(m.group(2) or 0)


def _read_keras3(root, table: list[Layer],
                 by_position: bool = False) -> dict[str, list[tuple[str, np.ndarray]]]:
  """{layer: [(weight name, array), …]} from a Keras 3 'layers/<class>[_k]/vars' file.

  by_position: name every layer by class order, even where the file names it.
  """
  by_class: dict[str, list[str]] = {}  # for files without names: Keras' own order
  for name, kind, _ in table:
    by_class.setdefault(_KERAS_CLASS[kind], []).append(name)
  kinds = {name: kind for name, kind, _ in table}
  out = {}
  for key in root:
    variables = _child(_child(root, key), "vars", optional=True)
    if variables is None or not len(variables):
      continue
    name = variables.attrs.get("name")
    name = name.decode("utf8") if isinstance(name, bytes) else name
    if name is not None and not isinstance(name, str):
      raise UserInputError(f"attribute name of {variables.name} is not a name")
    if name is None or by_position:
      cls, k = _class_order(key)
      names = by_class.get(cls, [])
      name = keras_inception.same_layer(names[k] if k < len(names) else key, name)
    fields = [f[0] for f in _FIELDS.get(kinds.get(name), ())]
    out[name] = [(f"{name}/{fields[i] if i < len(fields) else i} [{variables.name}/{i}]",
                  _dataset(variables, str(i))) for i in range(len(variables))]
  return out


def _keras_zip_weights(archive: zipfile.ZipFile) -> bytes:
  """The model.weights.h5 of a .keras zip (its config.json, which Keras would turn into
  layers and callables, is never read). A member that claims to inflate beyond deflate's
  ratio is a zip bomb, refused before reading."""
  try:
    info = archive.getinfo("model.weights.h5")
  except KeyError:
    raise UserInputError("a zip without model.weights.h5: not a .keras model file") from None
  if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (
      info.file_size > _MAX_EXPANSION * info.compress_size):
    raise UserInputError(f"model.weights.h5 claims {info.file_size} bytes from "
                         f"{info.compress_size} stored (compression {info.compress_type}): "
                         "not what Keras writes")
  return archive.read(info)


@contextlib.contextmanager
def _open(path: str):
  """An h5py.File of the weights: the file itself, or the member of a .keras zip."""
  source = path
  if zipfile.is_zipfile(path):  # a Keras 3 .keras archive: the weights are one member
    with zipfile.ZipFile(path) as archive:
      source = io.BytesIO(_keras_zip_weights(archive))
  elif not h5py.is_hdf5(path):
    raise UserInputError("neither HDF5 (Keras .h5 / .weights.h5) nor a .keras zip")
  with h5py.File(source, "r") as f:
    yield f


def read_layers(path, arch: str) -> dict[str, list[tuple[str, np.ndarray]]]:
  """A Keras weights file in any layout above -> {layer: [(weight name, array), …]}.

  The file is untrusted: links, storage and sizes are checked before reading (_child,
  _dataset). UserInputError naming the file and the problem, also for a file that libhdf5
  or zipfile cannot parse.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no Keras weights file at {path}")
  try:
    with _open(path) as f:
      return _layers(f, arch)
  except (UserInputError, OSError, zipfile.BadZipFile) as e:  # OSError: libhdf5's
    raise UserInputError(f"cannot read {path} as Keras weights: {e}") from e


def _layers(f, arch: str) -> dict[str, list[tuple[str, np.ndarray]]]:
  positional = arch in keras_inception.ARCHS
  legacy = _child(f, "model_weights", optional=True) or f  # model.save('x.h5'): a model
  if _strings(legacy, "layer_names"):
    layers = _read_legacy(legacy)
    return keras_inception.by_position(layers, keras_layers(arch)) if positional else layers
  for root in ("layers", "_layer_checkpoint_dependencies"):  # Keras 3 / tf.keras 2.13+
    group = _child(f, root, optional=True)
    if group is not None:
      return _read_keras3(group, keras_layers(arch), positional)
  raise UserInputError("not a Keras weights file: no 'layer_names' attribute (legacy .h5) "
                       "and no 'layers' group (Keras 3 .weights.h5); top-level keys: "
                       f"{sorted(f)[:10]}")


def convert_layers(arch: str, layers) -> tuple[dict, dict, bool]:
  """{layer: [(weight name, array)]} -> ({flax path: array}, {flax path: Keras weight}, has_top).

  Unknown and missing Keras layers are an error naming them; has_top is False for
  include_top=False files (no classifier layer at all).
  """
  what = f"keras.applications.{_KERAS_NAMES[arch]}"
  modules = {name: (kind, module) for name, kind, module in keras_layers(arch)}
  unknown = [name for name in layers if name not in modules]
  if unknown:
    raise UserInputError(f"{len(unknown)} layer(s) that are not part of {what} (another "
                         f"architecture?): {', '.join(unknown[:20])}")
  has_top = any(modules[name][1][0] == "head" for name in layers)
  missing = [f"{name} (-> {tree.path_str(module)})" for name, (_, module) in modules.items()
             if name not in layers and (has_top or module[0] != "head")]
  if missing:
    raise UserInputError(f"{len(missing)} layer(s) of {what} missing from the file:\n  "
                         + "\n  ".join(missing[:25]))
  arrays, origin = {}, {}
  for name, weights in layers.items():
    kind, module = modules[name]
    fields = _FIELDS[kind]
    if len(weights) != len(fields):
      raise UserInputError(f"Keras layer {name} holds {len(weights)} weight(s) "
                           f"{[w for w, _ in weights]}; {what} has {len(fields)} there: "
                           f"{', '.join(f[0] for f in fields)}")
    for (weight, value), (_, collection, field, *convert) in zip(weights, fields):
      path = (collection, *module, *field.split("/"))
      arrays[path], origin[path] = convert[0](value) if convert else value, weight
  return arrays, origin, has_top


def _classes(kernel: tuple[str, np.ndarray]) -> int:
  """The class count of the 'predictions' kernel (inputs, classes)."""
  name, value = kernel
  if np.ndim(value) != 2:
    raise UserInputError(f"{name} of shape {np.shape(value)} is not a classifier kernel")
  return int(value.shape[1])


def from_keras(arch: str, h5_path) -> tuple[dict[str, Any], meta_lib.WeightsMeta]:
  """keras.applications `arch` weights file -> (Flax variables, meta).

  arch: one of ARCHS ('resnet50_keras', 'inception_v3', …). h5_path: a legacy .h5
  (the keras.applications download), a Keras 3 .weights.h5 or a .keras file. The
  class count is read from the 'predictions' layer, so fine-tuned models convert
  too; without a classifier (include_top=False) only the backbone is returned.
  """
  check_one_of(arch, ARCHS, "Keras arch", error=UserInputError)
  layers = read_layers(h5_path, arch)
  arrays, origin, has_top = convert_layers(arch, layers)
  num_classes = _classes(layers["predictions"][0]) if "predictions" in layers else 1000
  expected = tree.variable_shapes(models.create(arch, num_classes=num_classes))
  if not has_top:
    expected = {path: shape for path, shape in expected.items() if path[1] != "head"}
  variables = tree.assign(expected, arrays, origin)
  return variables, meta_lib.imagenet_meta(arch, "keras", num_classes if has_top else 0)

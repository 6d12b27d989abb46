"""torchvision state_dict -> Flax variables, as a readable table.

  conv   weight (O, I, kH, kW)          -> params/…/kernel (kH, kW, I, O)
  linear weight (O, I)                   -> params/…/kernel (I, O); bias -> bias
  BN     weight, bias                    -> params/…/scale, bias
         running_mean, running_var       -> batch_stats/…/mean, var
         num_batches_tracked             -> dropped (a step counter, not a parameter)
  VGG classifier.0 (4096, C·7·7) flattens NCHW; ours flattens NHWC, so its input
  axis is permuted (c, h, w) -> (h, w, c).
Module names: ResNet 'layer{i}.{j}.conv{k}' -> 'layer{i}/block{j}/conv{k}',
'downsample.0/1' -> 'downsample_conv/bn', 'conv1'/'bn1' -> 'stem/…', 'fc' ->
'head/predictions'; VGG 'features.{n}' -> 'block{b}_conv{i}/conv|bn',
'classifier.0/3/6' -> 'head/fc1|fc2|predictions'.
"""
import os
import re
from typing import Any, Callable, Mapping

import numpy as np

from cnnviz_jax import models
from cnnviz_jax.errors import UserInputError, check_one_of
from cnnviz_jax.models import vgg as vgg_family
from cnnviz_jax.weights import meta as meta_lib
from cnnviz_jax.weights import pth
from cnnviz_jax.weights import tree

ARCHS = tuple(f"resnet{d}" for d in (18, 34, 50, 101, 152)) + tuple(
    f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn"))

TORCH_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
       "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _to_numpy(value) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch tensor
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def read_state_dict(state_dict_or_path) -> dict[str, np.ndarray]:
  """A state_dict (torch tensors or numpy) or a .pth path -> {key: numpy array}.

  A path is read with numpy alone (weights/pth.py): converting needs no torch install.
  """
  if isinstance(state_dict_or_path, (str, os.PathLike)):
    path, state_dict_or_path = state_dict_or_path, pth.read(state_dict_or_path)
    if "state_dict" in state_dict_or_path and len(state_dict_or_path) < 5:
      state_dict_or_path = state_dict_or_path["state_dict"]
    if not isinstance(state_dict_or_path, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state_dict_or_path.items()):
      raise UserInputError(f"{os.fspath(path)} holds no state_dict (a dict of name -> tensor)")
  return {k.removeprefix("module."): _to_numpy(v) for k, v in state_dict_or_path.items()}


def torch_array(kind: str, flax_module: tuple[str, ...], field: str, value: np.ndarray):
  """One torch tensor -> (flax path, array) by the table above."""
  if kind == "bn":
    collection, name = TORCH_BN[field]
    return (collection, *flax_module, name), value
  if field == "bias":
    return ("params", *flax_module, "bias"), value
  if value.ndim == 4:
    return ("params", *flax_module, "kernel"), value.transpose(2, 3, 1, 0)
  return ("params", *flax_module, "kernel"), value.T


def _resnet_module(key: str):
  """'layer1.0.downsample.1.weight' -> ('bn', ('layer1','block0','downsample_bn'), 'weight')."""
  *module, field = key.split(".")
  if module in (["conv1"], ["bn1"]):
    return ("bn" if module[0] == "bn1" else "conv"), ("stem", module[0]), field
  if module == ["fc"]:
    return "linear", ("head", "predictions"), field
  m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])", ".".join(module))
  if not m:
    return None
  layer, block, name = m.groups()
  name = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}.get(name, name)
  return ("bn" if "bn" in name else "conv"), (f"layer{layer}", f"block{block}", name), field


def _vgg_modules(arch: str) -> dict[str, tuple[str, tuple[str, ...]]]:
  """torchvision 'features.{n}' / 'classifier.{n}' prefixes -> (kind, flax module)."""
  depth, batch_norm = int(arch[3:5]), arch.endswith("_bn")
  table, n = {}, 0
  for b, convs in enumerate(vgg_family._CONFIGS[depth], start=1):  # pylint: disable=protected-access
    for i in range(1, convs + 1):
      table[f"features.{n}"] = ("conv", (f"block{b}_conv{i}", "conv"))
      if batch_norm:
        table[f"features.{n + 1}"] = ("bn", (f"block{b}_conv{i}", "bn"))
      n += 3 if batch_norm else 2  # conv [, bn], relu
    n += 1  # max-pool
  for index, name in (("0", "fc1"), ("3", "fc2"), ("6", "predictions")):
    table[f"classifier.{index}"] = ("linear", ("head", name))
  return table


def convert_tensors(state_dict: Mapping[str, np.ndarray], locate: Callable, what: str):
  """A state_dict by the table above -> ({flax path: array}, {flax path: torch key}).

  locate(key) -> (kind, flax module, field), or None for a key the model has no place for;
  num_batches_tracked is dropped. UserInputError listing the keys that are not part of `what`.
  """
  arrays, origin, unknown = {}, {}, []
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked"):
      continue
    found = locate(key)
    if found is None or (found[0] == "bn" and found[2] not in TORCH_BN):
      unknown.append(key)
      continue
    path, array = torch_array(*found, value)
    arrays[path], origin[path] = array, key
  if unknown:
    raise UserInputError(f"state_dict keys that are not part of {what}: {unknown[:20]}")
  return arrays, origin


def convert_state_dict(arch: str, state_dict: Mapping[str, np.ndarray]):
  """-> ({flax path: array}, {flax path: torch key}); unknown keys are an error."""
  if not arch.startswith("vgg"):
    return convert_tensors(state_dict, _resnet_module, f"torchvision's {arch}")
  table = _vgg_modules(arch)

  def locate(key):
    prefix, _, field = key.rpartition(".")
    return (*table[prefix], field) if prefix in table else None

  arrays, origin = convert_tensors(state_dict, locate, f"torchvision's {arch}")
  fc1 = ("params", "head", "fc1", "kernel")
  kernel = arrays.get(fc1)
  if kernel is not None and kernel.ndim == 2 and kernel.shape[0] % 49 == 0:
    # torch flattens the 7×7 features (c, h, w), ours (h, w, c); another shape: tree.assign
    # names the mismatch
    arrays[fc1] = kernel.reshape(-1, 7, 7, kernel.shape[1]).transpose(1, 2, 0, 3).reshape(
        kernel.shape)
  return arrays, origin


def classifier_classes(state_dict, key: str, what: str) -> int:
  """The class count of the classifier weight `key` (out, in): a clear error if there is none."""
  if key not in state_dict:
    raise UserInputError(f"missing: {key} (the classifier of {what})")
  shape = np.shape(state_dict[key])
  if len(shape) != 2:
    raise UserInputError(f"{key} of shape {shape} is not the classifier of {what}")
  return int(shape[0])


def from_torchvision(arch: str, state_dict_or_path) -> tuple[dict[str, Any],
                                                             meta_lib.WeightsMeta]:
  """torchvision `arch` weights (state_dict or .pth path) -> (Flax variables, meta).

  The class count is read from the checkpoint, so fine-tuned torchvision models
  convert as well as the ImageNet ones.
  """
  check_one_of(arch, ARCHS, "torchvision arch", error=UserInputError)
  state_dict = read_state_dict(state_dict_or_path)
  num_classes = classifier_classes(
      state_dict, "fc.weight" if arch.startswith("resnet") else "classifier.6.weight",
      f"torchvision's {arch}")
  arrays, origin = convert_state_dict(arch, state_dict)
  model = models.create(arch, num_classes=num_classes)
  variables = tree.assign(tree.variable_shapes(model), arrays, origin)
  return variables, meta_lib.imagenet_meta(arch, "torchvision", num_classes)

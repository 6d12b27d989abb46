"""Layer tables of keras.applications InceptionV3, Xception and InceptionResNetV2.

Keras leaves most of these layers unnamed, so their names in a file depend on what
else the saving session built ('conv2d_7' here, 'conv2d_101' there). Keras itself
loads them by position: the k-th weighted layer of a legacy .h5 (the download) is
the k-th weighted layer of `model.layers`; in a Keras 3 .weights.h5 the group
'layers/conv2d_k' is the k-th Conv2D. So do we: the tables list the layers in
`model.layers` order, unnamed ones named as their Keras 3 group ('conv2d_k',
'batch_normalization_k'), and a layer the file names is checked against its place.

`model.layers` order is not the order of the Keras source: a Functional model sorts
its layers by depth (longest path to the output, deepest first), ties by a
depth-first walk from the output that visits inputs in order (map_graph in
keras/src/ops/function.py). `_Graph` redoes that on a miniature of each network.

Weight kinds beyond keras.py's: Conv2D without bias ('conv_nobias'), BN with
scale=False (no gamma: 'bn_noscale'), SeparableConv2D ('sepconv': depthwise
(kH, kW, C, 1) -> DepthwiseConv's (kH, kW, 1, C), then pointwise (1, 1, C, O)).
"""
import re

from cnnviz_jax.models import inception_resnet_v2 as irv2_family
from cnnviz_jax.models import inception_v3 as v3_family
from cnnviz_jax.models import xception as xception_family

ARCHS = ("inception_v3", "xception", "inception_resnet_v2")
KERAS_NAMES = {"inception_v3": "InceptionV3", "xception": "Xception",
               "inception_resnet_v2": "InceptionResNetV2"}


def _depthwise_to_flax(kernel):  # (kH, kW, C, m) -> (kH, kW, 1, C·m), channel c·m + j
  return kernel.reshape(*kernel.shape[:2], 1, -1)


# kind -> ((Keras weight, Flax collection, Flax name[, conversion]), …) in Keras' storage order
FIELDS = {
    "conv_nobias": (("kernel", "params", "kernel"),),
    "bn_noscale": (("beta", "params", "bias"), ("moving_mean", "batch_stats", "mean"),
                   ("moving_variance", "batch_stats", "var")),
    "sepconv": (("depthwise_kernel", "params", "depthwise/kernel", _depthwise_to_flax),
                ("pointwise_kernel", "params", "pointwise/kernel")),
}
KERAS_CLASS = {"conv_nobias": "conv2d", "bn_noscale": "batch_normalization",
               "sepconv": "separable_conv2d"}
_CLASS = {"conv": "conv2d", "dense": "dense", "bn": "batch_normalization", **KERAS_CLASS}
_AUTO_NAME = re.compile(r"(conv2d|separable_conv2d|batch_normalization|dense)(?:_\d+)?")


def same_layer(table_name: str, stored: str | None) -> str:
  """The name for the layer at `table_name`'s place, whose file calls it `stored`.

  Keras' automatic names of the same class stand for each other; any other
  difference keeps the file's name, so a file of another architecture fails as
  "not part of" naming its layers.
  """
  if stored is None or stored == table_name:
    return table_name
  auto_table, auto_stored = _AUTO_NAME.fullmatch(table_name), _AUTO_NAME.fullmatch(stored)
  if auto_table and auto_stored and auto_table.group(1) == auto_stored.group(1):
    return table_name
  return stored


def by_position(layers: dict, table) -> dict:
  """{file layer: weights} in file order (legacy .h5) -> keyed by the table's names."""
  names = [name for name, _, _ in table]
  return {same_layer(names[i], name) if i < len(names) else name: weights
          for i, (name, weights) in enumerate(layers.items())}


class _Graph:
  """A Keras Functional graph in miniature: ops, their inputs, and the weighted layers."""

  def __init__(self):
    self.ops = [(None, ())]  # op 0: the Input

  def add(self, *inputs, layer=None) -> int:
    """layer: (Keras name or None, kind, Flax module path) when the op has weights."""
    self.ops.append((layer, inputs))
    return len(self.ops) - 1

  def conv_bn(self, x, path, bn="bn_noscale", act=True, name=None):
    """Keras' conv2d_bn: unnamed unless `name` ('conv_7b' -> 'conv_7b', 'conv_7b_bn')."""
    x = self.add(x, layer=(name, "conv_nobias", (*path, "conv")))
    x = self.add(x, layer=(name and f"{name}_bn", bn, (*path, "bn")))
    return self.add(x) if act else x

  def branches(self, x, block, branches):
    """Concatenated branches (a single one: just the chain). A branch chains conv2d_bn
    names, 'pool' (a pooling op) and (name, name) pairs (two convs, concatenated)."""
    outputs = []
    for chain in branches:
      y = x
      for step in chain:
        if step == "pool":
          y = self.add(y)
        elif isinstance(step, tuple):
          y = self.add(*(self.conv_bn(y, (*block, s)) for s in step))
        else:
          y = self.conv_bn(y, (*block, step))
      outputs.append(y)
    return self.add(*outputs) if len(outputs) > 1 else outputs[0]

  def layers(self, output) -> list[tuple[str, str, tuple[str, ...]]]:
    """The weighted layers in `model.layers` order, unnamed ones named by class order."""
    visit, stack = {}, [output]  # pre-order index of a depth-first walk from the output
    while stack:
      op = stack.pop()
      if op not in visit:
        visit[op] = len(visit)
        stack.extend(reversed(self.ops[op][1]))
    depth = {output: 0}
    for op in sorted(visit, reverse=True):  # an op comes after its inputs: depths are final
      for i in self.ops[op][1]:
        depth[i] = max(depth.get(i, 0), depth[op] + 1)
    counts, table = {}, []
    for op in sorted(visit, key=lambda op: (-depth[op], visit[op])):
      if self.ops[op][0] is not None:
        name, kind, path = self.ops[op][0]
        cls = _CLASS[kind]
        k = counts[cls] = counts.get(cls, -1) + 1
        table.append((name or (cls if k == 0 else f"{cls}_{k}"), kind, path))
    return table


_STEM = [["conv1", "conv2", "conv3", "pool", "conv4", "conv5", "pool"]]
_V3 = {  # InceptionA…E (models/inception_v3.py) as branches
    "InceptionA": [["branch1x1"], ["branch5x5_1", "branch5x5_2"],
                   ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ["pool", "branch_pool"]],
    "InceptionB": [["branch3x3"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                   ["pool"]],
    "InceptionC": [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
                   [f"branch7x7dbl_{i}" for i in range(1, 6)], ["pool", "branch_pool"]],
    "InceptionD": [["branch3x3_1", "branch3x3_2"], [f"branch7x7x3_{i}" for i in range(1, 5)],
                   ["pool"]],
    "InceptionE": [["branch1x1"], ["branch3x3_1", ("branch3x3_2a", "branch3x3_2b")],
                   ["branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")],
                   ["pool", "branch_pool"]],
}
_IRV2 = {
    "mixed_5b": [["branch_0"], ["branch_1_0", "branch_1_1"],
                 ["branch_2_0", "branch_2_1", "branch_2_2"], ["pool", "branch_pool"]],
    "mixed_6a": [["branch_0"], ["branch_1_0", "branch_1_1", "branch_1_2"], ["pool"]],
    "mixed_7a": [["branch_0_0", "branch_0_1"], ["branch_1_0", "branch_1_1"],
                 ["branch_2_0", "branch_2_1", "branch_2_2"], ["pool"]],
}


def _classifier(g, x):
  return g.add(g.add(x), layer=("predictions", "dense", ("head", "predictions")))  # avg_pool


def _inception_v3(g):
  x = g.branches(0, ("stem",), _STEM)
  for i, (cls, _) in enumerate(v3_family.BLOCKS):
    x = g.branches(x, (f"mixed{i}",), _V3[cls.__name__])
  return _classifier(g, x)


def _xception(g):
  x = 0
  for i in (1, 2):
    x = g.conv_bn(x, ("block1", f"conv{i}"), bn="bn", name=f"block1_conv{i}")
  for b, (widths, pool, first_act) in enumerate(xception_family.BLOCKS, start=2):
    shortcut, y = x, x
    if pool:
      shortcut = g.conv_bn(x, (f"block{b}", "residual"), bn="bn", act=False)
    for i in range(1, len(widths) + 1):
      if i > 1 or first_act:
        y = g.add(y)
      y = g.add(y, layer=(f"block{b}_sepconv{i}", "sepconv", (f"block{b}", f"sepconv{i}")))
      y = g.add(y, layer=(f"block{b}_sepconv{i}_bn", "bn", (f"block{b}", f"sepconv{i}", "bn")))
    x = g.add(g.add(y) if pool else y, shortcut)  # Keras: add([x, residual])
  for i in (1, 2):
    x = g.add(x, layer=(f"block14_sepconv{i}", "sepconv", ("block14", f"sepconv{i}")))
    x = g.add(g.add(x, layer=(f"block14_sepconv{i}_bn", "bn", ("block14", f"sepconv{i}", "bn"))))
  return _classifier(g, x)


def _inception_resnet_v2(g):
  x = g.branches(0, ("stem",), _STEM)
  x = g.branches(x, ("mixed_5b",), _IRV2["mixed_5b"])
  for reduction, kind, count, _ in irv2_family.STAGES:
    if reduction is not None:
      x = g.branches(x, (reduction[0],), _IRV2[reduction[0]])
    for i in range(1, count + 1):
      block = f"{kind}_{i}"
      chains = [[f"branch_{b}" if len(c) == 1 else f"branch_{b}_{j}" for j in range(len(c))]
                for b, c in enumerate(irv2_family.BRANCHES[kind])]
      up = g.add(g.branches(x, (block,), chains), layer=(f"{block}_conv", "conv", (block, "conv")))
      x = g.add(x, up)  # CustomScaleLayer()([x, up])
      if not (kind == "block8" and i == count):
        x = g.add(x)
  return _classifier(g, g.conv_bn(x, ("conv_7b",), name="conv_7b"))


def keras_layers(arch: str):
  """(Keras layer name, kind, Flax module path) of `arch`'s weighted layers, in order."""
  g = _Graph()
  return g.layers({"inception_v3": _inception_v3, "xception": _xception,
                   "inception_resnet_v2": _inception_resnet_v2}[arch](g))

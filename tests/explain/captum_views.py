"""Captum's rule-based methods (DeepLift, LRP) run on copies of the torchvision references in
the form Captum's documentation asks for: the same function, each operation its own module.

- ResNet: torchvision's blocks call one `relu` module twice (DeepLift refuses a module used
  twice) and add the shortcut with `+=` (LRP wants `Addition_Module` for every addition):
  each block here has its own ReLUs and an Addition_Module.
- DeepLift only: a hooked module right after another hooked module loses its rule in Captum
  0.9 (the first one's backward hook reads the gradient from before the second one's hook
  replaced it), which makes its max-pool rule a no-op after a ReLU; a `Clone` (not hooked)
  between them gives each hook its own tensor. Its max-pool rule unpools with
  `max_unpool2d`, which keeps one of the windows that share a maximum (ResNet's overlapping
  stem pool); `summed_unpool` replaces it by its adjoint, the pool's gradient, which sums them.
  Both are the rules as Captum's deep_lift.py writes them; cnnviz_jax/explain/rescale.py says
  why ours follow the rules, and test_deep_lift.py measures Captum as shipped.
"""
import copy

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck
from captum.attr._core import deep_lift as captum_deep_lift
from captum.attr._utils.custom_modules import Addition_Module


class Clone(nn.Module):
  """x.clone(): a module of its own between two hooked modules."""

  def forward(self, x):  # pylint: disable=arguments-differ
    return x.clone()


class OwnModulesBlock(nn.Module):
  """A torchvision BasicBlock / Bottleneck with a ReLU module per use and an Addition_Module."""

  def __init__(self, block):
    super().__init__()
    self.block = block
    self.relus = nn.ModuleList([nn.ReLU() for _ in range(3 if isinstance(block, Bottleneck)
                                                         else 2)])
    self.add = Addition_Module()

  def forward(self, x):  # pylint: disable=arguments-differ
    b = self.block
    y = self.relus[0](b.bn1(b.conv1(x)))
    if isinstance(b, Bottleneck):
      y = b.bn3(b.conv3(self.relus[1](b.bn2(b.conv2(y)))))
    else:
      y = b.bn2(b.conv2(y))
    shortcut = x if b.downsample is None else b.downsample(x)
    return self.relus[-1](self.add(y, shortcut))


def own_modules(reference, clone_before_pools: bool):
  """A copy of a torchvision ResNet or VGG computing the same function: ResNet blocks as
  OwnModulesBlock; with clone_before_pools, a Clone before each max-pool (for DeepLift)."""
  view = copy.deepcopy(reference).eval()
  if hasattr(view, "layer1"):
    for name in ("layer1", "layer2", "layer3", "layer4"):
      stage = getattr(view, name)
      for i, block in enumerate(stage):
        stage[i] = OwnModulesBlock(block)
    if clone_before_pools:
      view.maxpool = nn.Sequential(Clone(), view.maxpool)
  elif clone_before_pools:
    view.features = nn.Sequential(*[m for module in view.features for m in (
        [Clone(), module] if isinstance(module, nn.MaxPool2d) else [module])])
  return view


def summed_unpool(values, indices, kernel_size, stride, padding, output_size):
  """max_unpool2d's adjoint of max_pool2d: values summed where windows share a maximum."""
  del kernel_size, stride, padding
  shape = tuple(values.shape[:2]) + tuple(output_size[-2:])
  out = torch.zeros(shape, dtype=values.dtype).flatten(2)
  return out.scatter_add(2, indices.flatten(2), values.flatten(2)).reshape(shape)


def summed_max_pool_rule(monkeypatch):
  """Captum's DeepLift max-pool rule with `summed_unpool` (for this test)."""
  def rule(module, *args, **kwargs):
    return captum_deep_lift.maxpool(module, torch.nn.functional.max_pool2d, summed_unpool,
                                    *args, **kwargs)
  monkeypatch.setitem(captum_deep_lift.SUPPORTED_NON_LINEAR, nn.MaxPool2d, rule)

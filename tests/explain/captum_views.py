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

import jax
import jax.numpy as jnp
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


class ReLU6(nn.Module):
  """nn.ReLU6 under a type of its own, which `register_relu6` adds to Captum's rule tables
  (Captum's DeepLift and LRP look modules up by exact type and know nn.ReLU, not ReLU6)."""

  def forward(self, x):  # pylint: disable=arguments-differ
    return torch.nn.functional.relu6(x)


def register_relu6(monkeypatch):
  """ReLU6 as Captum's DeepLift `nonlinear` and LRP's relevance-passing activation."""
  from captum.attr._core import lrp as captum_lrp  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(captum_deep_lift.SUPPORTED_NON_LINEAR, ReLU6, captum_deep_lift.nonlinear)
  monkeypatch.setattr(captum_lrp, "SUPPORTED_NON_LINEAR_LAYERS",
                      [*captum_lrp.SUPPORTED_NON_LINEAR_LAYERS, ReLU6])


class OwnModulesMBConv(nn.Module):
  """An efficientnet-lite-pytorch MBConvBlock (no squeeze-excitation, eval mode) with a ReLU6
  per use and an Addition_Module for the skip connection."""

  def __init__(self, block):
    super().__init__()
    self.block = block
    block._swish = ReLU6()  # unused: the acts below; pylint: disable=protected-access
    self.acts = nn.ModuleList([ReLU6(), ReLU6()])
    self.add = Addition_Module()

  def forward(self, inputs, drop_connect_rate=None):  # pylint: disable=arguments-differ
    del drop_connect_rate  # eval mode: no drop connect
    b, args = self.block, self.block._block_args  # pylint: disable=protected-access
    x = inputs
    if args.expand_ratio != 1:
      x = self.acts[0](b._bn0(b._expand_conv(x)))  # pylint: disable=protected-access
    x = self.acts[1](b._bn1(b._depthwise_conv(x)))  # pylint: disable=protected-access
    x = b._bn2(b._project_conv(x))  # pylint: disable=protected-access
    if b.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
      x = self.add(x, inputs)
    return x


def _padded_conv(conv):
  """A Conv2dStaticSamePadding (a module with a child, which LRP skips) as its padding then a
  plain nn.Conv2d with the same weights, each a module LRP gives a rule."""
  plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0,
                    conv.dilation, conv.groups, conv.bias is not None).to(conv.weight.dtype)
  plain.load_state_dict(conv.state_dict())
  if isinstance(conv.static_padding, nn.ZeroPad2d):
    return nn.Sequential(conv.static_padding, plain)
  return plain  # its Identity: returning its input tensor itself confuses LRP's tensor hooks


def lite_own_modules(reference, for_lrp: bool):
  """A copy of an efficientnet-lite-pytorch model computing the same function with a module
  per operation: ReLU6 modules per use (the model-level one, shared by stem and top, moves
  behind their BatchNorms), MBConv blocks as OwnModulesMBConv. for_lrp: convolutions as
  `_padded_conv`, whose paddings get the ε rule (≈ identity)."""
  from captum.attr._utils.lrp_rules import EpsilonRule  # pylint: disable=import-outside-toplevel
  view = copy.deepcopy(reference).eval()
  view._bn0 = nn.Sequential(view._bn0, ReLU6())  # pylint: disable=protected-access
  view._bn1 = nn.Sequential(view._bn1, ReLU6())  # pylint: disable=protected-access
  del view._swish  # pylint: disable=protected-access
  view._swish = lambda x: x  # not a module: Captum's LRP refuses a module used twice
  for i, block in enumerate(view._blocks):  # pylint: disable=protected-access
    view._blocks[i] = OwnModulesMBConv(block)  # pylint: disable=protected-access
  if for_lrp:
    for module in list(view.modules()):
      for name, child in module.named_children():
        if type(child).__name__ == "Conv2dStaticSamePadding":
          setattr(module, name, _padded_conv(child))
    for module in view.modules():
      if isinstance(module, nn.ZeroPad2d):
        module.rule = EpsilonRule()
  return view


def jit_call(fn, model, variables, x, **kwargs):
  """Our side of a peer test: `fn(model, variables, x, **kwargs)` under jax.jit (the keyword
  arguments as constants). Measured on VGG-11, ResNet-18/50 and EfficientNet-Lite0: the
  jitted call, compile included, takes a third to a seventh of the eager one."""
  return jax.jit(lambda v, z: fn(model, v, z, **kwargs))(variables, jnp.asarray(x))

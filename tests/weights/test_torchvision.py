"""torchvision -> Flax conversion equals torchvision: logits and every block's output."""
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
from cnnviz_jax.weights import torchvision as tv_weights

torch = pytest.importorskip("torch")


def _torch_taps(arch, model):
  """Modules whose outputs correspond to our tap names, in forward order."""
  if arch.startswith("resnet"):
    return {"stem": model.maxpool, **{f"layer{i}": getattr(model, f"layer{i}") for i in range(1, 5)}}
  taps, block, conv = {}, 1, 0
  for module in model.features:
    if isinstance(module, torch.nn.ReLU):
      conv += 1
      taps[f"block{block}_conv{conv}"] = module
    elif isinstance(module, torch.nn.MaxPool2d):
      taps[f"block{block}"] = module
      block, conv = block + 1, 0
  return taps


def _torch_forward(arch, model, x_nhwc):
  outputs = {}
  hooks = [m.register_forward_hook(lambda _, __, out, name=name: outputs.__setitem__(
      name, out.detach().numpy().transpose(0, 2, 3, 1))) for name, m in _torch_taps(arch, model).items()]
  with torch.no_grad():
    logits = model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2))).numpy()
  for hook in hooks:
    hook.remove()
  return logits, outputs


# Every architecture the converter knows, at small sizes (a few at larger ones, for variety).
SIZES = {arch: 64 if arch.startswith("resnet") else 32 for arch in tv_weights.ARCHS}
SIZES.update(vgg16=48, vgg16_bn=64)


def test_every_converter_arch_is_a_registered_model_and_tested_here():
  assert set(tv_weights.ARCHS) <= set(cj.models.available())
  assert len(tv_weights.ARCHS) == 13  # resnet18…152, vgg11…19 and their _bn


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", list(SIZES.items()))
def test_logits_and_every_block_equal_torchvision(arch, size, torch_reference):
  reference = torch_reference(arch)
  variables, meta = cj.weights.from_torchvision(arch, reference.state_dict())
  x = np.random.RandomState(1).randn(2, size, size, 3).astype(np.float32)
  ref_logits, ref_taps = _torch_forward(arch, reference, x)
  model = cj.models.create(arch)
  logits, taps = cj.models.apply_with_taps(model, variables, x, list(ref_taps))
  assert list(ref_taps) == cj.models.layer_names(model, variables, x)
  for name in ref_taps:  # in forward order, so the first failure is the diverging block
    helpers.assert_close_at_scale(name, taps[name], ref_taps[name])
  helpers.assert_close_at_scale("logits", logits, ref_logits)
  assert meta.arch == arch and meta.normalization == "torch" and meta.num_classes == 1000


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet50", "vgg16"])
def test_full_size_224_equal_torchvision(arch, torch_reference):
  reference = torch_reference(arch, seed=3)
  variables, _ = cj.weights.from_torchvision(arch, reference.state_dict())
  x = np.random.RandomState(2).randn(1, 224, 224, 3).astype(np.float32)
  ref_logits, _ = _torch_forward(arch, reference, x)
  helpers.assert_close_at_scale("logits", cj.models.create(arch).apply(variables, x), ref_logits)


@pytest.mark.slow
def test_vgg_adaptive_pool_any_size_like_torchvision(torch_reference):
  """Inputs whose final map is not 7×7 go through torchvision's AdaptiveAvgPool2d(7)."""
  reference = torch_reference("vgg11", seed=4)
  variables, _ = cj.weights.from_torchvision("vgg11", reference.state_dict())
  model = cj.models.create("vgg11")
  for size in (32, 80, 100):  # final maps 1×1, 2×2, 3×3
    x = np.random.RandomState(size).randn(1, size, size, 3).astype(np.float32)
    ref_logits, _ = _torch_forward("vgg11", reference, x)
    helpers.assert_close_at_scale(f"logits at {size}px", model.apply(variables, x), ref_logits)


def test_fine_tuned_class_count_is_read_from_the_checkpoint(torch_reference):
  reference = torch_reference("resnet18", num_classes=7)
  variables, meta = cj.weights.from_torchvision("resnet18", reference.state_dict())
  assert meta.num_classes == 7
  assert variables["params"]["head"]["predictions"]["kernel"].shape == (512, 7)


def test_pth_file_and_numpy_state_dict(tmp_path, torch_reference):
  reference = torch_reference("resnet18")
  torch.save(reference.state_dict(), tmp_path / "r18.pth")
  from_file, _ = cj.weights.from_torchvision("resnet18", tmp_path / "r18.pth")
  as_numpy = {k: v.numpy() for k, v in reference.state_dict().items()}
  from_numpy, _ = cj.weights.from_torchvision("resnet18", as_numpy)
  kernel = reference.state_dict()["layer1.0.conv1.weight"].numpy().transpose(2, 3, 1, 0)
  for variables in (from_file, from_numpy):
    np.testing.assert_array_equal(variables["params"]["layer1"]["block0"]["conv1"]["kernel"],
                                  kernel)
    np.testing.assert_array_equal(variables["batch_stats"]["stem"]["bn1"]["var"],
                                  reference.bn1.running_var.numpy())

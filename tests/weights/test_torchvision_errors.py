"""Bad torchvision input: each mistake is named, nothing is skipped silently."""
import sys

import jax
import numpy as np
import pytest

import cnnviz_jax as cj

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def state_dict(torch_reference):
  return {k: v.numpy() for k, v in torch_reference("resnet18").state_dict().items()}


def test_unknown_arch_lists_the_available_ones(state_dict):
  with pytest.raises(ValueError, match=r"unknown torchvision arch 'resnet19'.*resnet18.*vgg16_bn"):
    cj.weights.from_torchvision("resnet19", state_dict)


def test_missing_key_names_the_parameter_and_shape(state_dict):
  broken = dict(state_dict)
  del broken["layer2.1.bn2.running_var"]
  with pytest.raises(ValueError, match=r"missing in the source: batch_stats/layer2/block1/bn2/var \(128,\)"):
    cj.weights.from_torchvision("resnet18", broken)


def test_extra_key_is_refused_by_name(state_dict):
  broken = dict(state_dict, **{"layer5.0.conv1.weight": np.zeros((3, 3, 3, 3))})
  with pytest.raises(ValueError, match=r"layer5\.0\.conv1\.weight"):
    cj.weights.from_torchvision("resnet18", broken)


def test_shape_mismatch_names_both_sides_and_both_shapes(state_dict):
  broken = dict(state_dict)
  broken["layer3.0.conv2.weight"] = np.zeros((256, 256, 1, 1), np.float32)
  with pytest.raises(ValueError, match=r"layer3\.0\.conv2\.weight -> params/layer3/block0/conv2/"
                                       r"kernel: source \(1, 1, 256, 256\), model \(3, 3, 256, 256\)"):
    cj.weights.from_torchvision("resnet18", broken)


def test_weights_of_another_arch_are_refused(torch_reference):
  r34 = torch_reference("resnet34").state_dict()
  with pytest.raises(ValueError, match=r"80 parameter\(s\) do not fit(.|\n)*not in the model: layer1\.2\.bn1\.running_mean -> batch_stats/layer1/block2/bn1/mean"):
    cj.weights.from_torchvision("resnet18", r34)


def test_pth_is_read_without_torch(monkeypatch, tmp_path, torch_reference):
  state_dict = torch_reference("resnet18").state_dict()
  torch.save(state_dict, tmp_path / "w.pth")
  expected, _ = cj.weights.from_torchvision("resnet18", state_dict)
  monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
  variables, _ = cj.weights.from_torchvision("resnet18", tmp_path / "w.pth")
  jax.tree.map(np.testing.assert_array_equal, variables, expected)

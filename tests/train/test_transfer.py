"""Transfer learning from a config: converted torchvision weights, new head, frozen backbone."""
import dataclasses

import jax
import numpy as np
import pytest

import cnnviz_jax as cj
import runs
from cnnviz_jax.train import loop

torch = pytest.importorskip("torch")


@pytest.mark.slow
def test_converted_backbone_trains_a_new_head_and_stays_exact(tmp_path, data_dir, torch_reference):
  reference = torch_reference("resnet18")
  variables, meta = cj.weights.from_torchvision("resnet18", reference.state_dict())
  # small inputs keep the test fast; the meta says how the data must be fed
  meta = dataclasses.replace(meta, input_size=32, resize_size=None)
  cj.weights.save(tmp_path / "weights", variables, meta)

  config = runs.tiny_config(data_dir, epochs=2)
  config.weights = str(tmp_path / "weights")
  config.model.name, config.model.head, config.model.options = "resnet18", "dense128", {}
  config.stages[0].freeze = (r"^(?!head/)",)
  config.stages[0].freeze_bn = True
  out = loop.train_and_evaluate(config, tmp_path / "run")

  final = runs.final_state(tmp_path / "run")
  for collection in ("params", "batch_stats"):
    backbone = {k: v for k, v in final[collection].items() if k != "head"}
    expected = {k: v for k, v in variables[collection].items() if k != "head"}
    jax.tree.map(np.testing.assert_array_equal, backbone, expected)
  assert final["params"]["head"]["hidden"]["kernel"].shape == (512, 128)
  assert final["params"]["head"]["predictions"]["kernel"].shape == (128, 3)
  assert out["splits"]["test"]["num_examples"] == 64

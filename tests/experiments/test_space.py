"""Sweep parameter spaces, trials.json bookkeeping and the sweep files, in process."""
import ast
import itertools
import json

import numpy as np
import pytest

from experiments import space, trials as trials_lib


def test_grid_is_the_product_last_parameter_fastest():
  parameters = {"config.a": space.split_values("1,2,3"), "variant": ["x", "y"]}
  assert space.grid(parameters) == [{"config.a": a, "variant": v}
                                    for a, v in itertools.product("123", "xy")]


def test_values_split_on_top_level_commas_only():
  name, values = space.parse_spec("config.model.options.filters=(8, 8),(16, 16),'a,b'")
  assert name == "config.model.options.filters"
  assert values == ["(8, 8)", "(16, 16)", "'a,b'"]


def test_python_values_become_flags_main_parses_back():
  value = {"kind": None, "rotation": 40.0, "horizontal_flip": True}
  assert ast.literal_eval(space.flag_value(value)) == value
  assert ast.literal_eval(space.flag_value([8, 16])) == (8, 16)
  assert space.flag_value(1e-4) == "0.0001" and space.flag_value("dense128") == "dense128"


def test_bad_specs_name_the_parameter():
  with pytest.raises(ValueError, match="model.head"):
    space.parse_spec("model.head=dense128")  # main's flag is config.model.head
  with pytest.raises(ValueError, match=r"config\.lr: a range needs random search"):
    space.grid({"config.lr": space.parse_values("config.lr", "loguniform:1e-4:1e-2")})
  with pytest.raises(ValueError, match="LOW < HIGH"):
    space.parse_values("config.lr", "loguniform:0:1e-2")


def test_random_search_is_seeded_in_range_and_grows_as_a_prefix():
  parameters = {"config.lr": "loguniform:1e-4:1e-2", "config.n": "int:1:3",
                "config.head": ["a", "b"]}
  draws = space.random(parameters, 300, seed=0)
  assert draws == space.random(parameters, 300, seed=0) != space.random(parameters, 300, seed=1)
  assert space.random(parameters, 10, seed=0) == draws[:10]
  lr = np.array([float(d["config.lr"]) for d in draws])
  assert lr.min() >= 1e-4 and lr.max() <= 1e-2
  # log-uniform: half the draws below the geometric middle 1e-3 (uniform would give ~9%)
  assert 0.4 < np.mean(lr < 1e-3) < 0.6
  assert {d["config.n"] for d in draws} == {"1", "2", "3"}
  assert {d["config.head"] for d in draws} == {"a", "b"}


def test_random_search_drops_duplicate_draws():
  draws = space.random({"config.head": ["a", "b"]}, 50, seed=0)
  assert sorted(d["config.head"] for d in draws) == ["a", "b"]


def test_trials_json_keeps_ids_and_appends_new_trials(tmp_path):
  first = [{"config.a": "1"}, {"config.a": "2"}]
  trials_lib.merge(tmp_path, "configs/demo.py", ["--config.seed=1"], first)
  grown = trials_lib.merge(tmp_path, "configs/demo.py", ["--config.seed=1"],
                           [{"config.a": "3"}, {"config.a": "1"}])
  assert [(t["id"], t["name"], t["params"]) for t in grown] == [
      (0, "trial_000", {"config.a": "1"}), (1, "trial_001", {"config.a": "2"}),
      (2, "trial_002", {"config.a": "3"})]
  assert json.loads((tmp_path / "trials.json").read_text())["trials"] == grown
  with pytest.raises(ValueError, match="another --workdir"):
    trials_lib.merge(tmp_path, "configs/demo.py", ["--config.seed=2"], first)


def test_variant_placeholder_in_fixed_overrides():
  trial = {"variant": "xception", "config.data.batch_size": "64"}
  assert trials_lib.command("c.py", trial, ["--config.weights=weights/{variant}"], "W")[3:] == [
      "--config=c.py:xception", "--workdir=W", "--config.weights=weights/xception",
      "--config.data.batch_size=64", "--noreport"]
  with pytest.raises(ValueError, match="no variant"):
    trials_lib.overrides("c.py", ["--config.weights=weights/{variant}"], {"config.a": "1"})

"""The seed study scripts and sweep files plan trials whose configs load and validate
(the configs' own smoke runs live in tests/configs)."""
import runpy

import pytest

from experiments import space, trials as trials_lib
from helpers import ROOT


@pytest.mark.parametrize("study", sorted((ROOT / "experiments").glob("seed_*.py")),
                         ids=lambda p: p.stem)
def test_study_plans_every_variant_of_its_config(study, monkeypatch):
  monkeypatch.chdir(ROOT)  # the scripts name configs/… from the repository root, as main
  config = runpy.run_path(str(study))["CONFIG"]
  variants = trials_lib.variants(config)
  assert variants == runpy.run_path(str(ROOT / config))["VARIANTS"]
  trials_lib.check(config, [], [{"variant": v} for v in variants])


def test_seed_000_sweep_file_plans_valid_trials(monkeypatch):
  monkeypatch.chdir(ROOT)
  sweep = runpy.run_path(str(ROOT / "experiments/sweeps/seed_000.py"))["get_sweep"]()
  parameters = {n: space.parse_values(n, v) for n, v in sweep["parameters"].items()}
  planned = space.random(parameters, sweep["random"], sweep["seed"])
  assert len(planned) == sweep["random"]  # no duplicate draws in this space
  trials_lib.check(sweep["config"], ["--config.data.root=DATA/inaturalist_12K/train"], planned)

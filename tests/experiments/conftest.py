"""Fixtures of the experiments tests: one tiny synthetic shapes dataset per session."""
import pathlib
import sys

import pytest

# runs.py (tests/train) holds the TINY demo overrides the train tests use.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "train"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))

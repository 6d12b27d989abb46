"""Fixtures of the experiments tests: one tiny synthetic shapes dataset per session."""
import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
# experiments/ and configs/ are top-level packages, importable from the repository root (as for
# `python -m experiments.sweep`); runs.py (tests/train) holds the TINY demo overrides.
sys.path[:0] = [str(TESTS.parent), str(TESTS / "train")]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))

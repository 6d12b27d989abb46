"""Fixtures of the train tests: one tiny synthetic shapes dataset per session."""
import pytest


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))

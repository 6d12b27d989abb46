"""One tiny demo run (train + report) per session, shared by the report tests."""
import pytest

import report_runs


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
  """(workdir, completed process) of the tiny demo: python -m cnnviz_jax.main …"""
  root = tmp_path_factory.mktemp("demo")
  result = report_runs.train_demo(root / "workdir", root / "tfds")
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  return root / "workdir", result

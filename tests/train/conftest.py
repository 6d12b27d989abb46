"""Fixtures of the train tests: a local GCS emulator per module that asks for it."""
import pytest

import gcs_emulator


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """The emulator with one bucket (gcs_emulator.BUCKET); this process's clients point at it
  too."""
  emulator = gcs_emulator.Emulator(str(tmp_path_factory.mktemp("gcs")))
  try:
    emulator.start()
  except gcs_emulator.EmulatorUnavailable as e:
    pytest.skip(f"no local GCS emulator: {e}")
  emulator.create_bucket(gcs_emulator.BUCKET)
  with pytest.MonkeyPatch.context() as patch:
    for name, value in emulator.env.items():
      patch.setenv(name, value)
    yield emulator
  emulator.stop()

"""A misspelt field in any section of a config file is an error naming its path, not a setting
silently ignored."""
import pytest

from cnnviz_jax.errors import ConfigError
from cnnviz_jax.train import config_defaults, validate


@pytest.mark.parametrize("section, misspelt, path", [
    (lambda c: c.stages[0].optimizer, "momentom", "config.stages[0].optimizer.momentom"),
    (lambda c: c.stages[0].schedule, "warmup_epoch", "config.stages[0].schedule.warmup_epoch"),
    (lambda c: c.early_stopping, "patiense", "config.early_stopping.patiense"),
    (lambda c: c.model, "dtpye", "config.model.dtpye"),
])
def test_a_misspelt_nested_field_is_named(section, misspelt, path):
  config = config_defaults.experiment_config()
  validate.validate(config)  # the defaults themselves are valid
  with section(config).unlocked():
    section(config)[misspelt] = 1
  with pytest.raises(ConfigError) as error:
    validate.validate(config)
  assert f"unknown config field(s) {path}; valid: " in str(error.value)

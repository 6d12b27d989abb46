"""Check an experiment config before any work: unknown fields and bad values name the field."""
import ml_collections

from cnnviz_jax import models
from cnnviz_jax.data import config as data_config
from cnnviz_jax.data import image_folder, splits
from cnnviz_jax.errors import ConfigError, check_fields, check_one_of
from cnnviz_jax.train import config_defaults, explanation_loss, from_config, optimizers
from cnnviz_jax.train import schedules
from cnnviz_jax.weights import store

# The valid field names are those the defaults have, in nested sections too: a misspelt
# field in a config file would otherwise be a silently ignored setting.
_DEFAULTS, _STAGE = config_defaults.experiment_config(), config_defaults.stage()
TOP_LEVEL = frozenset(_DEFAULTS.keys())
STAGE = frozenset(_STAGE.keys())
SECTIONS = {"model": frozenset(_DEFAULTS.model.keys()),
            "early_stopping": frozenset(_DEFAULTS.early_stopping.keys())}
STAGE_SECTIONS = {"optimizer": frozenset(_STAGE.optimizer.keys()),
                  "schedule": frozenset(_STAGE.schedule.keys())}


def validate(config: ml_collections.ConfigDict) -> None:
  check_fields(config.keys(), TOP_LEVEL, "config.")
  for name, fields in SECTIONS.items():
    check_fields(config[name].keys(), fields, f"config.{name}.")
  data_config.resolve(config.data)  # names its own bad fields
  check_one_of(config.model.name, models.available(), "model", "config.model.name")
  if config.model.dtype not in ("float32", "bfloat16", "float16"):
    raise ConfigError(f"config.model.dtype must be float32, bfloat16 or float16; "
                      f"got {config.model.dtype!r}")
  if not config.stages:
    raise ConfigError("config.stages is empty: give at least one stage")
  for i, stage in enumerate(config.stages):
    where = f"config.stages[{i}]."
    check_fields(stage.keys(), STAGE, where)
    for name, fields in STAGE_SECTIONS.items():
      check_fields(stage[name].keys(), fields, f"{where}{name}.")
    if not isinstance(stage.epochs, int) or stage.epochs < 1:
      raise ConfigError(f"{where}epochs must be a positive int; got {stage.epochs!r}")
    check_one_of(stage.optimizer.name, optimizers.NAMES, "optimizer", f"{where}optimizer.name")
    check_one_of(stage.schedule.name, schedules.NAMES, "schedule", f"{where}schedule.name")
    if not 0.0 <= stage.freeze_fraction <= 1.0:
      raise ConfigError(f"{where}freeze_fraction must be in [0, 1]; got {stage.freeze_fraction}")
  early = config.early_stopping
  if early.metric not in ("accuracy", "loss") or early.mode not in ("max", "min"):
    raise ConfigError("config.early_stopping: metric must be 'accuracy' or 'loss' and mode 'max' "
                      f"or 'min'; got {early.metric!r}, {early.mode!r}")
  bad_splits = [s for s in config.eval_splits if s not in splits.SPLIT_NAMES]
  if bad_splits or "validation" not in config.eval_splits:
    raise ConfigError(f"config.eval_splits must include 'validation' and hold only "
                      f"{', '.join(splits.SPLIT_NAMES)}; got {tuple(config.eval_splits)}")
  every = config.get("checkpoint_every_steps", 0)
  if not isinstance(every, int) or every < 0:
    raise ConfigError(f"config.checkpoint_every_steps must be an int >= 0; got {every!r}")
  if not 0.0 <= config.label_smoothing < 1.0:
    raise ConfigError(f"config.label_smoothing must be in [0, 1); got {config.label_smoothing}")
  if explanation_loss.enabled(config.get("explanation_loss")):
    _check_explanation_loss(config)


def check_inputs_exist(config: ml_collections.ConfigDict) -> None:
  """The converted weights and the image folder a valid config names are there: a run checks
  before it writes anything (validate() does not look, so that sweeps plan anywhere)."""
  data = data_config.resolve(config.data)
  if data["name"] == "folder" and data.get("root"):
    image_folder.check_root(data["root"])
  if config.get("weights"):
    store.check(config.weights)


def _check_explanation_loss(config: ml_collections.ConfigDict) -> None:
  if config.get("feature_extraction"):
    raise ConfigError("config.explanation_loss needs the images: it cannot train on cached "
                      "features (config.feature_extraction = True)")
  size = from_config.data_config(config)["image_size"]  # the weights' size where it rules
  explanation_loss.check(config.explanation_loss, from_config.model(config, 2),
                         (1, size, size, 3))

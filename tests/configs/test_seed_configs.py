"""The seed configs: variants by name, validation, and a real (tiny) training run of every
variant with a scratch CNN. The big backbones' runs are in the other files of this folder,
so pytest-xdist's loadfile spreads them over workers."""
import pytest

import helpers
import smoke

ALL = tuple(smoke.SEED_CLASSES)


@pytest.mark.parametrize("name", ALL)
def test_every_config_names_its_variants_and_defaults_to_the_first(name):
  module = smoke.config_module(name)
  assert module.VARIANTS and len(set(module.VARIANTS)) == len(module.VARIANTS)
  assert module.get_config().to_dict() == module.get_config(module.VARIANTS[0]).to_dict()
  with pytest.raises(ValueError, match="unknown variant 'nope'.*valid: " +
                     ", ".join(module.VARIANTS)):
    module.get_config("nope")


@pytest.mark.parametrize("name, variant", smoke.cases(*ALL))
def test_every_variant_validates(name, variant):
  config = smoke.config_module(name).get_config(variant)
  smoke.validate.validate(config)


def test_the_variant_after_the_colon_reaches_get_config():
  """`--config configs/X.py:variant`, as cnnviz_jax.main parses it."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=values)
  path = helpers.ROOT / "configs" / "seed_003_tf_flowers.py"
  values(["prog", f"--config={path}:dropout"])
  assert values.config.model.options.dropout == 0.5
  with pytest.raises(flags.IllegalFlagValueError, match="unknown variant 'nope'"):
    values(["prog", f"--config={path}:nope"])


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", smoke.cases(*ALL, light=True))
def test_scratch_cnn_variants_train(tmp_path, name, variant):
  config, results = smoke.run_case(name, variant, tmp_path)
  assert config.model.name == "small_cnn"
  # seeds 001 and 003 train the whole net from scratch with Keras' RMSprop at 1e-4
  stage, = config.stages
  assert (stage.optimizer.name, stage.schedule.lr, stage.freeze, stage.freeze_fraction) == (
      "rmsprop", 1e-4, (), 0.0)
  assert config.model.options.dropout == (0.5 if variant in ("augment_dropout", "dropout")
                                          else 0.0)
  assert (config.data.augment.kind == "keras") == (variant == "augment_dropout")


def test_configs_say_what_the_seed_write_ups_say():
  get = lambda name, variant="": smoke.config_module(name).get_config(variant)  # noqa: E731
  seed_001 = get("seed_001_cats_vs_dogs")
  assert (seed_001.data.image_size, seed_001.data.batch_size, seed_001.stages[0].epochs) == (
      150, 20, 30)
  head_stage, fine_tune = get("seed_002_flowers102").stages
  assert (head_stage.epochs, head_stage.optimizer.name, head_stage.schedule.lr) == (
      30, "adam", 0.01)
  assert (fine_tune.epochs, fine_tune.optimizer.name, fine_tune.schedule.name) == (
      120, "radam", "cyclic")
  assert (fine_tune.schedule.min_lr, fine_tune.schedule.max_lr) == (5e-8, 3e-3)
  assert get("seed_002_flowers102").model.head == "mlp"
  features = get("seed_003_tf_flowers", "inception_features")
  assert features.feature_extraction and features.model.name == "inception_v3"
  assert features.model.head.to_dict() == dict(kind="dense", hidden=256, dropout=0.5,
                                               pool="flatten")  # Flatten(3x3x2048) -> 256
  assert (features.stages[0].optimizer.name, features.stages[0].schedule.lr) == ("rmsprop", 2e-5)
  frozen_aug = get("seed_003_tf_flowers", "inception_frozen_aug")
  assert not frozen_aug.feature_extraction and frozen_aug.data.augment.kind == "keras"
  assert frozen_aug.stages[0].optimizer.name == "adam"
  assert get("seed_004_caltech101").model.name.startswith("vgg19")
  seed_000 = get("seed_000_inaturalist")
  assert seed_000.data.max_per_class == 1000 and seed_000.model.name == "inception_resnet_v2"

"""Seed 000's four ImageNet backbones fine-tuned on an iNaturalist-style image folder: a
real (tiny) run of the default variant (the seed's best, InceptionResNetV2), and the
seed's "80-90% of the layers frozen" on each real model. The other three variants differ
only in the backbone, whose conversion and forward pass tests/weights checks against
Keras; training each here would cost ~2.5 more minutes of compilation."""
import pytest

import smoke

NAME = "seed_000_inaturalist"


VARIANTS = smoke.config_module(NAME).VARIANTS


@pytest.mark.slow  # ~40 s on 2 CPU cores, mostly compiling the training step
@pytest.mark.parametrize("variant", VARIANTS[:1])
def test_seed_000_variant_trains_on_an_image_folder(tmp_path, variant):
  config, results = smoke.run_case(NAME, variant, tmp_path)
  assert config.model.name == variant and config.data.name == "folder"
  # the folder holds 10 images a class; max_per_class keeps 8 of each, over all splits
  kept = sum(results["splits"][s]["num_examples"] for s in ("train", "validation", "test"))
  assert kept == 10 * smoke.FOLDER_MAX_PER_CLASS
  assert config.early_stopping.enabled and config.data.augment.kind == "keras"
  head = config.model.head.to_dict()
  assert (head["kind"], head["hidden"]) == ("mlp", 128)  # dense 128 + BatchNorm + dropout
  (frozen, head_trains), = smoke.frozen_fractions(config, num_classes=10)
  assert 0.8 <= frozen <= 0.9 and head_trains


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_seed_000_variant_freezes_80_to_90_percent_of_its_backbone(variant):
  config = smoke.config_module(NAME).get_config(variant)
  assert config.model.name == variant
  (frozen, head_trains), = smoke.frozen_fractions(config, num_classes=10)  # shapes only
  assert 0.8 <= frozen <= 0.9 and head_trains

"""Seed 000's four ImageNet backbones fine-tuned on an iNaturalist-style image folder: a
real (tiny) run each, and the seed's "80-90% of the layers frozen" on each real model."""
import pytest

import smoke

NAME = "seed_000_inaturalist"


@pytest.mark.slow  # ~45 s each on 2 CPU cores, mostly compiling the backbone
@pytest.mark.parametrize("variant", smoke.config_module(NAME).VARIANTS)
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

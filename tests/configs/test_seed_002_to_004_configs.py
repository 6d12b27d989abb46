"""The transfer-learning configs of seeds 002-004 (ResNet50, InceptionV3, VGG19): a real
(tiny) run each, and what each stage freezes on the real model."""
import pytest

import smoke

BIG = smoke.cases("seed_002_flowers102", "seed_003_tf_flowers", "seed_004_caltech101",
                  light=False)
BACKBONE_FROZEN, EVERYTHING_TRAINS = (1.0, True), (0.0, True)
# Per stage, as the seeds describe them: (fraction of the backbone frozen, head trains).
FREEZING = {"seed_002_flowers102": [BACKBONE_FROZEN, EVERYTHING_TRAINS],  # head, then all
            "seed_003_tf_flowers": [BACKBONE_FROZEN],  # features / frozen base
            "seed_004_caltech101": [BACKBONE_FROZEN]}


@pytest.mark.slow  # 10-30 s each on 2 CPU cores, mostly compiling the steps
@pytest.mark.parametrize("name, variant", BIG)
def test_transfer_variant_trains(tmp_path, name, variant):
  config, results = smoke.run_case(name, variant, tmp_path)
  assert smoke.frozen_fractions(config, smoke.SEED_CLASSES[name]) == FREEZING[name]
  if name == "seed_004_caltech101":
    assert results["class_names"] == ["brain", "butterfly", "ewer", "helicopter", "ketch"]

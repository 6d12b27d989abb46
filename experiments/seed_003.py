r"""Seed 003's study: tf_flowers, from a scratch CNN to InceptionV3 transfer, side by side.

Run:   python -m experiments.seed_003 --workdir workdir/seed_003 [--parallel 2]
The sweep over every variant of configs/seed_003_tf_flowers.py,
with experiments/sweep.py's flags:
W/results.md and W/results.csv compare the variants, W/accuracy.png shows their train / val /
test accuracy side by side; W/trial_NNN is each variant's ordinary main workdir.
Seed: 64%, 72%, 82% and 71% accuracy. Only the Inception variants take converted weights, so
with weights run them as their own study:
  python -m experiments.seed_003 --workdir workdir/seed_003_inception \
      --grid variant=inception_features,inception_frozen_aug \
      -- --config.weights=weights/inception_v3
"""
from experiments import sweep

CONFIG = "configs/seed_003_tf_flowers.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

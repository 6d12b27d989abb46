r"""Seed 001's study: cats_vs_dogs, the scratch CNN with and without augmentation + dropout.

Run:   python -m experiments.seed_001 --workdir workdir/seed_001 [--parallel 2]
The sweep over every variant of configs/seed_001_cats_vs_dogs.py,
with experiments/sweep.py's flags:
W/results.md and W/results.csv compare the variants, W/accuracy.png shows their train / val /
test accuracy side by side; W/trial_NNN is each variant's ordinary main workdir.
Seed: the baseline stalls near 75% validation accuracy and overfits; augmentation + dropout
reduce the overfitting.
"""
from experiments import sweep

CONFIG = "configs/seed_001_cats_vs_dogs.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

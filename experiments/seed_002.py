r"""Seed 002's study: oxford_flowers102, torchvision ResNet50 + MLP head in two stages.

Run:   python -m experiments.seed_002 --workdir workdir/seed_002 [--parallel 2] \
           -- --config.weights=weights/resnet50
The sweep over every variant of configs/seed_002_flowers102.py,
with experiments/sweep.py's flags:
W/results.md and W/results.csv compare the variants, W/accuracy.png shows their train / val /
test accuracy side by side; W/trial_NNN is each variant's ordinary main workdir.
Seed: 89.3% test accuracy after stage 2.
"""
from experiments import sweep

CONFIG = "configs/seed_002_flowers102.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

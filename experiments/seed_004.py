r"""Seed 004's study: five caltech101 classes, VGG19 (Keras) transfer.

Run:   python -m experiments.seed_004 --workdir workdir/seed_004 [--parallel 2] \
           -- --config.weights=weights/vgg19_keras
The sweep over every variant of configs/seed_004_caltech101.py,
with experiments/sweep.py's flags:
W/results.md and W/results.csv compare the variants, W/accuracy.png shows their train / val /
test accuracy side by side; W/trial_NNN is each variant's ordinary main workdir.
Seed: 96% test accuracy.
"""
from experiments import sweep

CONFIG = "configs/seed_004_caltech101.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

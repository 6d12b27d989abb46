r"""Seed 000's study: four ImageNet backbones on iNaturalist-10, 85% of each frozen.

Run:   python -m experiments.seed_000 --workdir workdir/seed_000 [--parallel 2] \
           -- --config.data.root=DATA/inaturalist_12K/train \
           --config.weights=weights/{variant}
The sweep over every variant of configs/seed_000_inaturalist.py,
with experiments/sweep.py's flags:
W/results.md and W/results.csv compare the variants, W/accuracy.png shows their train / val /
test accuracy side by side; W/trial_NNN is each variant's ordinary main workdir.
Seed: 79.4% validation accuracy with InceptionResNetV2, then Xception, InceptionV3, ResNet50.
`{variant}` in an override becomes each trial's variant: one converted weights directory
per backbone (see the config). Its hyper-parameter sweep: experiments/sweeps/seed_000.py.
"""
from experiments import sweep

CONFIG = "configs/seed_000_inaturalist.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

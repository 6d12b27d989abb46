r"""Seed 000's wandb sweep, as a sweep file: InceptionResNetV2 (the seed's best backbone) on
iNaturalist-10 over dense size, dropout, augmentation, batch size, frozen fraction and LR.

Run:   python -m experiments.sweep --sweep experiments/sweeps/seed_000.py \
           --workdir workdir/sweeps/seed_000 [--parallel 2] -- \
           --config.data.root=DATA/inaturalist_12K/train \
           --config.weights=weights/inception_resnet_v2
Seed:  79.4% validation accuracy at best; it found 80-90% frozen and a dense 128 head best,
       and augmentation negatively correlated with batch size and dropout. Each trial trains
       up to 30 epochs with early stopping (configs/seed_000_inaturalist.py): plan for a GPU.
The figures (W/parallel_coordinates.png, W/parameter_importance.png) are the seed's wandb
plots; compare the backbones with the study, python -m experiments.seed_000.
"""
from cnnviz_jax.data import config as data_config


def get_sweep() -> dict:
  return dict(
      config="configs/seed_000_inaturalist.py:inception_resnet_v2",
      random=30,  # draws; a grid of these values would be 3·3·2·2·3·… = 648 trials
      seed=0,
      metric="val_accuracy",
      parameters={
          "config.model.head.hidden": [128, 256, 512],
          "config.model.head.dropout": [0.0, 0.2, 0.3],
          # the whole augment dict: off, or the seed's Keras ImageDataGenerator
          "config.data.augment": [{"kind": None}, dict(data_config.KERAS_SEED_001)],
          "config.data.batch_size": [32, 64],
          "config.stages[0].freeze_fraction": [0.7, 0.8, 0.9],
          "config.stages[0].schedule.lr": "loguniform:1e-5:1e-3",
      })

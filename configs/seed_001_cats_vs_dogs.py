r"""Seed 001: cats vs dogs with Chollet's 4-conv scratch CNN, then augmentation + dropout.

Run:   python -m cnnviz_jax.main --config configs/seed_001_cats_vs_dogs.py:augment_dropout \
           --workdir workdir/seed_001_cats_vs_dogs
Variants (after ':'; the first is the default):
  augment_dropout  the seed's final model: Keras augmentation (rotation 40°, shifts 0.2, shear
                   0.2, zoom 0.2, horizontal flip, 'nearest' fill) + dropout 0.5 in the head.
  baseline         the same net without augmentation or dropout (the seed's first run).
Data:  tfds 'cats_vs_dogs' (23,262 images, one tfds split; downloaded by tfds on the first run,
       or prepare it once with `tfds build cats_vs_dogs` and pass --config.data.data_dir=DIR).
       It is cut 60/20/20 into train/validation/test, the proportions of the seed's
       6,000/2,000/2,000-image Kaggle subset. Images at 150×150, rescaled to [0, 1].
Model: 'small_cnn': 3×3 valid convs 32-64-128-128, each with a 2×2 max-pool, Flatten,
       dense 512, 2 classes (the seed's sigmoid unit as a 2-way softmax). The seed puts its
       Dropout(0.5) before the dense 512; ours follows it (models/heads.py).
Train: RMSprop 1e-4 (Keras: rho 0.9, eps 1e-7), batch 20, 30 epochs. No pretrained weights.
Expect: the seed's baseline stalls at about 75% validation accuracy and overfits from about
       epoch 14; it reports that augmentation + dropout "significantly reduced overfitting"
       without a final figure.
Smoke run (tests/configs: tfds mock data, 48 px, batch 2, 4 steps): 8-12 s per variant on
2 CPU cores shared with other jobs (load ~4), compilation included.
"""
import ml_collections

from cnnviz_jax.data import config as data_config
from configs import default

VARIANTS = ("augment_dropout", "baseline")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "seed 001")
  config = default.get_config()
  config.data.name = "cats_vs_dogs"
  config.data.split_fractions = (0.6, 0.2, 0.2)
  config.data.image_size = 150
  config.data.batch_size = 20
  config.data.normalization = "unit"  # the seed's rescale=1./255
  config.model.name = "small_cnn"
  config.stages = [default.stage(epochs=30, optimizer="rmsprop", lr=1e-4, schedule="constant",
                                   eps=default.KERAS_EPS)]
  config.model.options.dropout = 0.0
  if variant == "augment_dropout":
    config.data.augment = ml_collections.ConfigDict(data_config.KERAS_SEED_001)
    config.model.options.dropout = 0.5
  return config

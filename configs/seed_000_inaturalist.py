r"""Seed 000: iNaturalist-10 fine-tuning with four ImageNet backbones, 85% of each frozen.

Run:   python -m cnnviz_jax.main --config configs/seed_000_inaturalist.py:inception_resnet_v2 \
           --workdir workdir/seed_000_inaturalist/inception_resnet_v2 \
           --config.data.root=DATA/inaturalist_12K/train \
           --config.weights=weights/inception_resnet_v2
Variants (after ':'; the first is the default), in the seed's order of validation accuracy:
  inception_resnet_v2  the seed's best: 79.4% validation accuracy
  xception             close behind InceptionResNetV2
  inception_v3         below those two
  resnet50_keras       the weakest of the four
Data:  an image folder, data.root/<class>/<images> (name='folder'), 10 classes of up to
       1,000 images each (data.max_per_class): e.g. the iNaturalist_12K 'train' folder of
       the CS6910 course (Amphibia, Animalia, Arachnida, Aves, Fungi, Insecta, Mammalia,
       Mollusca, Plantae, Reptilia). Cut 75 / 12.5 / 12.5 into train / validation / test
       (the seed's "(75, 25, 25)" split, read as 75% train). 299 px for the Inception
       family and Xception, 224 px for ResNet50; each backbone's own Keras normalization.
       Training augmentation: data.config.KERAS_SEED_001 (rotation, shifts, shear, zoom, flip).
Model: the backbone + head 'mlp' of 128 units: dense 128, ReLU, BatchNorm, dropout 0.3 (the
       seed found 128 better than 256 and 512).
Weights: without --config.weights the backbone is randomly initialized and this is NOT the
       seed's fine-tuning. Convert the Keras ImageNet file of the variant once
       (keras.applications.<Model>(weights='imagenet', include_top=False) downloads it to
       ~/.keras/models/), e.g.
         python -m cnnviz_jax.weights.convert --source keras --arch inception_resnet_v2 \
             --input inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5 \
             --output weights/inception_resnet_v2
       (arch = the variant name; resnet50_keras reads
       resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5). The converted meta sets the
       input size and normalization.
Train: the first 85% of the backbone's layers frozen (the seed: 80-90% froze best; sweep
       --config.stages[0].freeze_fraction), Adam 1e-4, batch 32, up to 30 epochs with early
       stopping on validation accuracy (patience 5, the best epoch restored). The seed swept
       learning rate, batch size, dropout and dense size without printing its choices.
       Unlike Keras, BatchNorm layers in the frozen part still update their statistics
       (freeze_bn is all or nothing, and the unfrozen top needs its BatchNorm to train).
Smoke run (tests/configs: a generated folder of 10 classes × 8 JPEGs, batch 2, one 30-step
epoch; 75 px, ResNet50 32 px) on 2 CPU cores shared with other jobs (load ~4):
inception_resnet_v2 122 s, inception_v3 62 s, xception 52 s, resnet50_keras 37 s, most of
it compiling the backbone (initialization, train and eval steps).
"""
import ml_collections

from cnnviz_jax.data import config as data_config
from configs import default

VARIANTS = ("inception_resnet_v2", "xception", "inception_v3", "resnet50_keras")
INPUT_SIZE = {"inception_resnet_v2": 299, "xception": 299, "inception_v3": 299,
              "resnet50_keras": 224}
NORMALIZATION = {"inception_resnet_v2": "tf", "xception": "tf", "inception_v3": "tf",
                 "resnet50_keras": "caffe"}
FREEZE_FRACTION = 0.85


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "seed 000")
  config = default.get_config()
  config.data.name = "folder"  # set --config.data.root=DIR: DIR/<class>/<images>
  config.data.max_per_class = 1000
  config.data.split_fractions = (0.75, 0.125, 0.125)
  config.data.image_size = INPUT_SIZE[variant]
  config.data.normalization = NORMALIZATION[variant]
  config.data.augment = ml_collections.ConfigDict(data_config.KERAS_SEED_001)
  config.data.batch_size = 32
  config.model.name = variant
  with config.model.ignore_type():  # default.py's head is a name; this one is a HeadSpec dict
    config.model.head = ml_collections.ConfigDict(dict(kind="mlp", hidden=128, dropout=0.3))
  config.stages = [default.stage(epochs=30, optimizer="adam", lr=1e-4, schedule="constant",
                                   eps=default.KERAS_EPS, freeze_fraction=FREEZE_FRACTION)]
  config.early_stopping.update(enabled=True, metric="accuracy", mode="max", patience=5)
  return config

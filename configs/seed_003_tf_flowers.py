r"""Seed 003: tf_flowers, from a scratch CNN to InceptionV3 transfer (Chollet ch. 5 style).

Run:   python -m cnnviz_jax.main --config configs/seed_003_tf_flowers.py:basic_cnn \
           --workdir workdir/seed_003_tf_flowers/basic_cnn
Variants (after ':'; the first is the default), with the seed's accuracy:
  basic_cnn             4-conv scratch CNN ('small_cnn'), no dropout               64%
  dropout               the same + dropout 0.5 in the dense head                   72%
  inception_features    InceptionV3 base run once over every image (feature
                        extraction, no augmentation); Flatten(3×3×2048) -> dense
                        256, ReLU, dropout 0.5 -> 5, RMSprop 2e-5                  82%
  inception_frozen_aug  the frozen InceptionV3 base end to end with Keras
                        augmentation; Flatten -> dense 256, ReLU -> 5, Adam 1e-3   71%
Data:  tfds 'tf_flowers' (3,670 images of 5 classes, one tfds split; downloaded by tfds on
       the first run, or `tfds build tf_flowers` once and --config.data.data_dir=DIR), cut
       80/10/10 into train/validation/test. 150 px as in the seed (InceptionV3's 3×3×2048
       output there), batch 20. Scratch CNNs see [0, 1] pixels, InceptionV3 [-1, 1] ('tf').
Weights (Inception variants): without --config.weights the base is randomly initialized and
       this is NOT the seed's transfer learning. Convert the Keras ImageNet file once
       (keras.applications.InceptionV3(weights='imagenet', include_top=False) downloads
       inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 to ~/.keras/models/):
         python -m cnnviz_jax.weights.convert --source keras --arch inception_v3 \
             --input inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 \
             --output weights/inception_v3
       then add --config.weights=weights/inception_v3. The converted meta sets the input
       size (299 px, so the flattened features grow to 8×8×2048) and the normalization.
Train: the seed gives no optimizer for the scratch CNNs: RMSprop 1e-4 as in Chollet's
       listing it follows; 30 epochs everywhere (the seed's feature head stopped improving
       after 5). RMSprop and Adam with Keras' defaults (rho 0.9, eps 1e-7). The frozen base
       runs BatchNorm on its ImageNet statistics, as a Keras base with trainable=False does.
Smoke run (tests/configs: tfds mock data, batch 2, one epoch of a few steps; 48 px for the
scratch CNN, 75 px for InceptionV3) on 2 CPU cores shared with other jobs (load ~4):
basic_cnn 9 s, dropout 12 s, inception_features 46 s, inception_frozen_aug 45 s, most of
the last two compiling InceptionV3.
"""
import ml_collections

from cnnviz_jax.data import config as data_config
from configs import default

VARIANTS = ("basic_cnn", "dropout", "inception_features", "inception_frozen_aug")


def _keras_stage(optimizer: str, lr: float, **fields) -> ml_collections.ConfigDict:
  return default.stage(epochs=30, optimizer=optimizer, lr=lr, schedule="constant",
                       eps=default.KERAS_EPS, **fields)


def _flatten_head(config, dropout: float) -> None:
  # Keras Flatten -> Dense(256, relu) [-> Dropout] -> Dense(5)
  with config.model.ignore_type():  # default.py's head is a name; this one is a HeadSpec dict
    config.model.head = ml_collections.ConfigDict(dict(kind="dense", hidden=256,
                                                       dropout=dropout, pool="flatten"))


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "seed 003")
  config = default.get_config()
  config.data.name = "tf_flowers"
  config.data.image_size = 150
  config.data.batch_size = 20
  config.data.normalization = "unit"
  if variant in ("basic_cnn", "dropout"):
    config.model.name = "small_cnn"
    config.model.options.dropout = 0.5 if variant == "dropout" else 0.0
    config.stages = [_keras_stage("rmsprop", 1e-4)]
    return config
  config.model.name = "inception_v3"
  config.data.normalization = "tf"
  if variant == "inception_features":
    config.feature_extraction = True  # the base runs once; the head trains on its outputs
    _flatten_head(config, dropout=0.5)
    config.stages = [_keras_stage("rmsprop", 2e-5, freeze=default.HEAD_ONLY)]
  else:
    config.data.augment = ml_collections.ConfigDict(data_config.KERAS_SEED_001)
    _flatten_head(config, dropout=0.0)
    config.stages = [_keras_stage("adam", 1e-3, freeze=default.HEAD_ONLY, freeze_bn=True)]
  return config

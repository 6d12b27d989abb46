r"""Seed 004: VGG19 transfer learning on five Caltech-101 classes.

Run:   python -m cnnviz_jax.main --config configs/seed_004_caltech101.py \
           --workdir workdir/seed_004_caltech101 --config.weights=weights/vgg19_keras
Variants: only 'vgg19_keras' (the default; the seed works in TensorFlow/Keras).
Data:  tfds 'caltech101', classes brain, butterfly, ewer, helicopter, ketch (the data
       config's default subset for caltech101); downloaded by tfds on the first run, or
       `tfds build caltech101` once and --config.data.data_dir=DIR. tfds' train split (30
       images a class) gives train 80% / validation 20%; its test split is the test set.
       224 px, Keras 'caffe' normalization (BGR, ImageNet mean subtracted), batch 16.
Model: 'vgg19_keras' convolutional base + head 'dense256' (global average pool, dense 256,
       ReLU, dropout 0.5, 5 classes); the seed does not describe its head.
Weights: without --config.weights the base is randomly initialized and this is NOT the
       seed's transfer learning. Convert the Keras ImageNet file once
       (keras.applications.VGG19(weights='imagenet', include_top=False) downloads
       vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 to ~/.keras/models/):
         python -m cnnviz_jax.weights.convert --source keras --arch vgg19_keras \
             --input vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
             --output weights/vgg19_keras
Train: base frozen, the head trains: Adam 1e-4 (Keras' eps 1e-7), 20 epochs, early stopping
       on validation accuracy (patience 5, best epoch restored). The seed gives none of these.
Expect: the seed's 100% train, 98% validation, 96% test accuracy.
Smoke run (tests/configs: tfds mock data, 32 px, batch 2, one epoch): 29 s on 2 CPU cores
shared with other jobs (load ~4), most of it compiling VGG19.
"""
import ml_collections

from configs import default

VARIANTS = ("vgg19_keras",)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  variant = default.variant_of(VARIANTS, variant, "seed 004")
  config = default.get_config()
  config.data.name = "caltech101"  # classes default to the seed's five
  config.data.split_fractions = (0.8, 0.2, 0.0)  # of tfds' train; test is tfds' test
  config.data.image_size = 224
  config.data.normalization = "caffe"
  config.data.batch_size = 16
  config.model.name = variant
  config.model.head = "dense256"
  config.stages = [default.stage(epochs=20, optimizer="adam", lr=1e-4, schedule="constant",
                                   eps=default.KERAS_EPS, freeze=default.HEAD_ONLY)]
  config.early_stopping.update(enabled=True, metric="accuracy", mode="max", patience=5)
  return config

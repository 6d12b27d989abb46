"""Datasets, splits, augmentation and the tf.data -> sharded jax.Array input pipeline."""

"""Datasets, splits, augmentation and the tf.data -> sharded jax.Array input pipeline.

    from cnnviz_jax import data
    cfg = data.default_config()                 # name='shapes' (the embedded default)
    it = data.train_iterator(cfg, start_step=0)  # global batches, resumable by step
    for batch in data.eval_iterator(cfg, split="validation"): ...

Importing this package imports TensorFlow (CPU only, for tf.data).
"""
from cnnviz_jax.data.config import (KERAS_SEED_001, TORCHVISION_SEED_002, default_config,
                                    resolve, with_meta)
from cnnviz_jax.data.pipeline import (EvalIterator, TrainIterator, batch_sharding,
                                      eval_iterator, train_iterator)
from cnnviz_jax.data.shapes_render import SHAPES
from cnnviz_jax.data.source import Source
from cnnviz_jax.data.sources import get_source
from cnnviz_jax.data.stats import dataset_stats, mean_std

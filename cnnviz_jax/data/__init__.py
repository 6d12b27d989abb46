"""Datasets, splits, augmentation and the tf.data -> sharded jax.Array input pipeline.

    from cnnviz_jax import data
    cfg = data.default_config()                 # name='shapes' (the embedded default)
    it = data.train_iterator(cfg, start_step=0)  # global batches, resumable by step
    for batch in data.eval_iterator(cfg, split="validation"): ...

TensorFlow (CPU only, for tf.data) is imported with the first name that needs it: a config
file (data.config) loads without it, so a sweep's driver or a bad config starts in ~1 s, not ~6.
"""
import importlib

_EXPORTS = {
    "config": ("KERAS_SEED_001", "TORCHVISION_SEED_002", "default_config", "resolve",
               "with_meta"),
    "layout": ("batch_sharding",),
    "pipeline": ("EvalIterator", "TrainIterator", "eval_iterator", "train_iterator"),
    "shapes_render": ("SHAPES",),
    "source": ("Source",),
    "datasets": ("get_source",),
    "stats": ("dataset_stats", "mean_std"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
  if name not in _HOME:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


def __dir__():
  return sorted(set(globals()) | set(_HOME))

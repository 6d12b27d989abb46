"""Every field of an experiment config, with its default: the schema `validate` checks.

configs/default.py returns `experiment_config()`; the other configs start from it and
override a few fields, with `stage()` for each training stage.
"""
import ml_collections

from cnnviz_jax.data import config as data_config
from cnnviz_jax.data import splits
from cnnviz_jax.errors import check_one_of

HEAD_ONLY = (r"^(?!head/)",)  # a freeze rule: every parameter outside the head
KERAS_EPS = 1e-7  # Keras' Adam and RMSprop epsilon (optax's is 1e-8)


def variant_of(variants: tuple[str, ...], variant: str, study: str) -> str:
  """`variant` of a study config (`--config X.py:variant`); empty -> the first."""
  variant = variant or variants[0]
  check_one_of(variant, variants, "variant", study)
  return variant


def stage(epochs: int = 10, optimizer: str = "adamw", lr: float = 3e-3,
          schedule: str = "warmup_cosine", eps: float = 1e-8,
          **fields) -> ml_collections.ConfigDict:
  """One training stage: its epochs, optimizer, LR schedule and what is frozen."""
  s = ml_collections.ConfigDict()
  s.epochs = epochs
  s.optimizer = ml_collections.ConfigDict(dict(
      name=optimizer, momentum=0.9, nesterov=False, b1=0.9, b2=0.999, eps=eps, rho=0.9,
      weight_decay=1e-4 if optimizer == "adamw" else 0.0, grad_clip=0.0))
  s.schedule = ml_collections.ConfigDict(dict(
      name=schedule, lr=lr, warmup_epochs=1.0, end_lr=0.0, boundaries_epochs=(),
      decay_factor=0.1, min_lr=lr / 100, max_lr=lr, step_size_epochs=2.0))
  s.freeze = ()  # regexes of parameter paths, e.g. HEAD_ONLY: everything but the head
  s.freeze_fraction = 0.0  # freeze the first fraction of layers, in the forward call order
  s.freeze_bn = False  # BatchNorm uses its running statistics and does not update them
  s.update(fields)
  return s


def experiment_config() -> ml_collections.ConfigDict:
  """The defaults: the demo CNN on the synthetic shapes, one stage."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = data_config.default_config()  # synthetic shapes, 32 px, 5 classes
  # Optional fields as typed placeholders, so `--config.data.data_dir=…` can set them.
  for name, kind in (("data_dir", str), ("root", str), ("file_format", str),
                     ("max_per_class", int),
                     ("eval_batch_size", int), ("resize_size", int)):
    if config.data[name] is None:
      config.data[name] = ml_collections.config_dict.placeholder(kind)
  config.data.batch_size = 32
  # dtype: compute dtype; "bfloat16" keeps float32 params and stores activations in bf16
  config.model = ml_collections.ConfigDict(dict(name="small_cnn_bn", head="", dtype="float32"))
  config.model.options = ml_collections.ConfigDict()
  config.weights = ""  # a converted-weights directory (python -m cnnviz_jax.weights.convert)
  config.feature_extraction = False  # train the head on cached backbone features
  config.label_smoothing = 0.0
  # Right for the right reasons (train/explanation_loss.py): kind "" = off, or e.g.
  # "input_gradient" / "grad_cam"; weight = λ; layer: CAM kinds ("" = last); masks from the
  # data; region: penalize "outside_object" (1 − object mask) or the "annotated" ignore mask
  config.explanation_loss = ml_collections.ConfigDict(dict(
      kind="", weight=1.0, layer="", target="label", normalize=False, region="outside_object"))
  config.stages = [stage(epochs=12)]
  config.early_stopping = ml_collections.ConfigDict(dict(
      enabled=False, metric="accuracy", mode="max", patience=5, restore_best=True))
  config.checkpoint_keep = 2
  config.checkpoint_every_steps = 0  # also checkpoint inside epochs, every N steps (0: off)
  config.eval_splits = splits.SPLIT_NAMES
  return config

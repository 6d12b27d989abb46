"""What travels with converted weights: where they came from and how to feed them."""
import dataclasses
import functools
import json
from importlib import resources

from cnnviz_jax.errors import UserInputError, check_one_of
from cnnviz_jax.weights import keras_inception, preprocessing


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
  """The 1000 ImageNet-1k class names in torchvision/Keras index order (package data)."""
  text = resources.files("cnnviz_jax.weights").joinpath("imagenet_classes.json").read_text()
  return tuple(json.loads(text))


@dataclasses.dataclass(frozen=True)
class WeightsMeta:
  arch: str  # a name from cj.models.available()
  source: str  # 'torchvision' | 'keras' | 'efficientnet_lite' | 'cnnviz_jax'
  normalization: str  # preprocessing.MODES: 'torch' | 'caffe' | 'tf' | 'lite'
  input_size: int = 224
  resize_size: int | None = None  # torchvision eval: shorter side to this, then center crop
  class_names: tuple[str, ...] = ()

  def __post_init__(self):
    check_one_of(self.normalization, preprocessing.MODES, "normalization", error=UserInputError)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def preprocess(self, images):
    """uint8 NHWC RGB -> float32 NHWC, exactly as the source framework does it."""
    return preprocessing.preprocess(images, self.normalization)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1)

  @classmethod
  def from_json(cls, text: str, source: str = "meta.json") -> "WeightsMeta":
    """The meta `to_json` wrote; UserInputError naming `source` for anything else. Weights
    converted before the field was named `normalization` call it `preprocessing`."""
    try:
      fields = json.loads(text)
    except json.JSONDecodeError as e:
      raise UserInputError(f"{source} is not JSON: {e}") from e
    if isinstance(fields, dict) and "normalization" not in fields and "preprocessing" in fields:
      fields["normalization"] = fields.pop("preprocessing")
    if not isinstance(fields, dict) or not {"arch", "source", "normalization"} <= set(
        fields) <= {f.name for f in dataclasses.fields(cls)}:
      raise UserInputError(f"{source} does not hold the fields of a WeightsMeta "
                           f"({', '.join(f.name for f in dataclasses.fields(cls))})")
    wrong = [name for name, value in fields.items() if not _FIELD_TYPES[name](value)]
    if wrong:
      raise UserInputError(f"{source}: {', '.join(wrong)} of another type")
    return cls(**{**fields, "class_names": tuple(fields.get("class_names", ()))})


def _is_size(value) -> bool:
  return type(value) is int and 0 < value <= 2**16


_FIELD_TYPES = {"arch": lambda v: isinstance(v, str), "source": lambda v: isinstance(v, str),
                "normalization": lambda v: isinstance(v, str), "input_size": _is_size,
                "resize_size": lambda v: v is None or _is_size(v),
                "class_names": lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v)}


def imagenet_meta(arch: str, source: str, num_classes: int,
                  input_size: int | None = None) -> WeightsMeta:
  """Meta for an ImageNet checkpoint; class names only when it has the 1000 classes."""
  names = imagenet_class_names() if num_classes == 1000 else tuple(
      f"class_{i}" for i in range(num_classes))
  if source == "efficientnet_lite":  # TF's eval: the central size/(size + 32), resized
    return WeightsMeta(arch, source, "lite", input_size, input_size + 32, names)
  if source == "torchvision":
    return WeightsMeta(arch, source, "torch", 224, 256, names)
  if arch in keras_inception.ARCHS:  # keras.applications fed [-1, 1] at 299×299
    return WeightsMeta(arch, source, "tf", 299, None, names)
  return WeightsMeta(arch, source, "caffe", 224, None, names)

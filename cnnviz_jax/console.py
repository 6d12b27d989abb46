"""What a command prints on the console, set once by `configure(FLAGS.verbosity)`.

At the default --verbosity (0): our own lines (a run's header, one line per epoch, clu's
progress/ETA line, where the results and the report are) and every warning, except the
known noise below that asks nothing of the user. Other libraries' INFO lines (tfds' per-read
lines, jax's backends and distributed service, orbax's saves, clu's echo of each epoch's
metrics), the C++ INFO logs of TensorFlow, and progress bars (tfds') written to a file or a
pipe rather than a terminal appear at --verbosity=1, with everything else.

Used as a library (a notebook, a script), nothing is configured: Python's logging shows
warnings only, so training shows its progress as a tqdm.auto bar instead (`progress_bar`: a
widget in Jupyter, text in a terminal), which our commands leave off.
"""
import logging
import os
import sys

from absl import logging as absl_logging

_in_command = False  # configure() was called: a command's console, with clu's progress line
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Other libraries' INFO lines that are a run's own output: (file, start of the message)
_KEPT = (("clu/platform/local.py", "Setting work unit notes"),)  # ReportProgress: steps/s, ETA
# Warnings that ask nothing of the user: (file, start of the message)
_NOISE = (
    # tfds' PartialDecoding (our label scan) reads the deprecated attribute itself
    ("tensorflow_datasets/core/features/feature.py", "`FeatureConnector.dtype` is deprecated"),
    # orbax says so of every manager opened read-only, as evaluation and the report open theirs
    ("orbax/checkpoint/checkpoint_manager.py", "Given directory is read only"),
    # tfds says so of every config it does not predefine, as the shapes dataset's are
    ("tensorflow_datasets/core/dataset_builder.py", "Using custom data configuration"),
)


def _is_one_of(record: logging.LogRecord, known) -> bool:
  path = record.pathname.replace(os.sep, "/")
  return any(path.endswith("/" + file) and str(record.msg).startswith(start)
             for file, start in known)


class _DefaultConsole(logging.Filter):
  """Our INFO lines and the warnings that matter; the rest waits for --verbosity=1."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return not _is_one_of(record, _NOISE)
    return os.path.abspath(record.pathname).startswith(_PACKAGE) or _is_one_of(record, _KEPT)


def configure(verbosity: int) -> None:
  """Call first in a command's main(), before TensorFlow and tqdm are imported: they read
  TF_CPP_MIN_LOG_LEVEL and TQDM_DISABLE (each left as the user set it) then."""
  global _in_command
  _in_command = True
  if verbosity >= 1:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ warnings and errors only
  if not sys.stderr.isatty():  # a bar's every redraw would be a line of the log
    os.environ.setdefault("TQDM_DISABLE", "1")
  absl_logging.get_absl_handler().python_handler.addFilter(_DefaultConsole())


def progress_bar(total: int, initial: int, description: str, show: bool = True):
  """A tqdm.auto bar of `total` steps, `initial` done: where the library runs outside our
  commands (their console shows clu's progress line, logged) and `show`; else a bar that
  draws nothing. TQDM_DISABLE=1 turns it off."""
  from tqdm import auto  # pylint: disable=import-outside-toplevel  (after configure())
  off = {"disable": True} if _in_command or not show else {}  # else TQDM_DISABLE decides
  return auto.tqdm(total=total, initial=initial, desc=description, unit="step", **off)

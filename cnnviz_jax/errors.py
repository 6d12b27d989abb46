"""The one kind of error that means "your input is wrong": a config, a path, a file, a workdir.

The command lines print it as `error: <message>` on stderr and exit 2; `--verbosity=1` also
prints its traceback, for debugging. Any other exception is a bug and keeps its traceback.
"""
import contextlib
import sys
import traceback
from collections.abc import Callable, Iterable

from absl import flags

EXIT_USER_ERROR = 2  # as absl's and argparse's usage errors


class UserInputError(ValueError):
  """Bad input, named in the message (a ValueError, as before this class existed)."""


class ConfigError(UserInputError):
  """An experiment or data config field with a bad value or name."""


def check_fields(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
  """ConfigError naming each of `keys` outside `valid` by its path (`where` + key), and the
  valid names; the one check of a config's field names."""
  valid = set(valid)
  unknown = sorted(set(keys) - valid)
  if unknown:
    raise ConfigError(f"unknown config field(s) {', '.join(where + k for k in unknown)}; "
                      f"valid: {', '.join(sorted(valid))}")


def check_one_of(value, valid: Iterable, what: str, field: str = "", note: str = "",
                 error: type[UserInputError] = ConfigError) -> None:
  """`error` "[field: ]unknown <what> <value>; valid: <valid>[ note]" when `value` is not one
  of `valid`; the one check of a named choice (a dataset, an optimizer, a normalization)."""
  valid = tuple(valid)
  if value not in valid:
    raise error(f"{field + ': ' if field else ''}unknown {what} {value!r}; "
                f"valid: {', '.join(map(str, valid))}{' ' + note if note else ''}")


@contextlib.contextmanager
def exit_on_user_error(verbosity: int = 0):
  """Runs a CLI's body; a UserInputError becomes one `error: …` line and exit 2."""
  try:
    yield
  except UserInputError as e:
    if verbosity >= 1:
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def parse_flags(argv: list[str], explain: Callable[[list[str]], str | None] = lambda _: None):
  """absl's flag parsing for `app.run(main, flags_parser=…)`: a bad flag is one `error:` line
  and exit 2. `explain(argv)` names the problem behind another exception of a flag's parser
  (ml_collections raises a bare KeyError for an override of a missing field), or None."""
  with exit_on_user_error():
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      raise UserInputError(f"{e} (--helpfull lists the flags)") from e
    except (AttributeError, KeyError, IndexError) as e:
      problem = explain(argv)
      if problem:
        raise ConfigError(problem) from e
      raise

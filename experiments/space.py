"""A sweep's parameter space and its trials: grid product or seeded random draws.

A parameter is a config field as main's flag names it (`config.stages[0].schedule.lr`) or
`variant` (the `:variant` of `--config path:variant`). Its values are either a list (grid
axis; random search picks from it) or, for random search only, a range:
`loguniform:LO:HI`, `uniform:LO:HI`, `int:LO:HI` (both ends included).
Every value becomes the string main's command line receives, so a trial is a dict
{parameter: string}; drawn floats keep 4 significant digits (readable, and stable ids).
"""
import itertools
import re
from collections.abc import Mapping, Sequence

import numpy as np

RANGES = ("loguniform", "uniform", "int")
VARIANT = "variant"


def flag_value(value) -> str:
  """A Python value as main's `--config.x=VALUE` parses it back (tuples as '(8, 16)')."""
  if isinstance(value, str):
    return value
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  return repr(value)


def split_values(text: str) -> list[str]:
  """'1e-3,3e-3' -> ['1e-3', '3e-3']; commas inside (), [], {} or quotes do not split."""
  values, depth, quote, current = [], 0, None, ""
  for char in text:
    if quote:
      quote = None if char == quote else quote
    elif char in "\"'":
      quote = char
    elif char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    elif char == "," and depth == 0:
      values.append(current.strip())
      current = ""
      continue
    current += char
  values.append(current.strip())
  if any(not v for v in values):
    raise ValueError(f"empty value in {text!r}; write values as a,b,c")
  return values


def check_name(name: str) -> str:
  if name != VARIANT and not re.fullmatch(r"config(\.\w+(\[\d+\])?)+", name):
    raise ValueError(f"sweep parameter {name!r}: write a config field as main's flag names it "
                     "(e.g. config.stages[0].schedule.lr, config.model.head) or 'variant'")
  return name


def parse_spec(spec: str) -> tuple[str, list[str] | str]:
  """'config.x=a,b' -> ('config.x', ['a', 'b']); 'config.x=loguniform:1e-4:1e-2' -> a range."""
  if "=" not in spec:
    raise ValueError(f"sweep parameter {spec!r}: write NAME=VALUES, e.g. "
                     "config.stages[0].schedule.lr=1e-3,3e-3 or config.x=loguniform:1e-4:1e-2")
  name, text = (s.strip() for s in spec.split("=", 1))
  return check_name(name), parse_values(name, text)


def parse_values(name: str, values) -> list[str] | str:
  """A list of values (as flag strings) or a range string, checked."""
  if isinstance(values, str) and values.split(":", 1)[0] in RANGES:
    kind, *bounds = values.split(":")
    try:
      low, high = (float(b) for b in bounds)
    except ValueError:
      raise ValueError(f"{name}: range {values!r} must be {kind}:LOW:HIGH with two "
                       "numbers") from None
    if not low < high or (kind == "loguniform" and low <= 0):
      raise ValueError(f"{name}: range {values!r} needs LOW < HIGH (and LOW > 0 for loguniform)")
    return values
  if isinstance(values, str):
    return split_values(values)
  if isinstance(values, Sequence) and values:
    return [flag_value(v) for v in values]
  raise ValueError(f"{name}: give a non-empty list of values or a range ({', '.join(RANGES)}); "
                   f"got {values!r}")


def grid(parameters: Mapping[str, list[str] | str]) -> list[dict[str, str]]:
  """Every combination, the last parameter varying fastest."""
  ranges = [n for n, v in parameters.items() if isinstance(v, str)]
  if ranges:
    raise ValueError(f"{', '.join(ranges)}: a range needs random search (--random N); a grid "
                     "takes value lists")
  names = list(parameters)
  return [dict(zip(names, combo)) for combo in itertools.product(*parameters.values())]


def _draw(rng: np.random.Generator, values: list[str] | str) -> str:
  if not isinstance(values, str):
    return values[rng.integers(len(values))]
  kind, low, high = values.split(":")
  low, high = float(low), float(high)
  if kind == "int":
    return str(int(rng.integers(int(low), int(high) + 1)))
  if kind == "loguniform":
    return f"{float(np.exp(rng.uniform(np.log(low), np.log(high)))):.4g}"
  return f"{rng.uniform(low, high):.4g}"


def random(parameters: Mapping[str, list[str] | str], count: int,
           seed: int) -> list[dict[str, str]]:
  """`count` draws (duplicates dropped); the first n of a longer search with the same seed
  are the same n, so a sweep can grow."""
  rng = np.random.default_rng(seed)
  trials = []
  for _ in range(count):
    trial = {name: _draw(rng, values) for name, values in parameters.items()}
    if trial not in trials:
      trials.append(trial)
  return trials


def overrides(trial: Mapping[str, str]) -> list[str]:
  """A trial's flags for main (everything but the variant)."""
  return [f"--{name}={value}" for name, value in trial.items() if name != VARIANT]

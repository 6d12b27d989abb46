"""A sweep's trials on disk: W/trials.json (stable ids), each trial's main command, and the
check that every trial's config loads and validates before any trial runs."""
import json
import os
import runpy
import shlex
import sys
from collections.abc import Mapping, Sequence

from absl import flags
from etils import epath
from ml_collections import config_flags

from experiments import space

TRIALS_FILE = "trials.json"


def trial_name(index: int) -> str:
  return f"trial_{index:03d}"


def config_argument(config: str, trial: Mapping[str, str]) -> str:
  """main's --config value: the file, with the trial's variant after a colon."""
  return f"{config}:{trial[space.VARIANT]}" if space.VARIANT in trial else config


def overrides(config: str, fixed: Sequence[str], trial: Mapping[str, str]) -> list[str]:
  """The fixed overrides ('{variant}' replaced by the trial's variant: per-backbone weights,
  e.g. --config.weights=weights/{variant}), then the trial's own."""
  variant = config_argument(config, trial).partition(":")[2]
  if not variant and any("{variant}" in f for f in fixed):
    raise ValueError("an override names {variant} but no variant is given (sweep 'variant' or "
                     "--config path:variant)")
  return [f.replace("{variant}", variant) for f in fixed] + space.overrides(trial)


def command(config: str, trial: Mapping[str, str], fixed: Sequence[str], workdir,
            report: bool = False) -> list[str]:
  """The trial as one ordinary `python -m cnnviz_jax.main` command (any scheduler can run it)."""
  return [sys.executable, "-m", "cnnviz_jax.main", f"--config={config_argument(config, trial)}",
          f"--workdir={workdir}", *overrides(config, fixed, trial),
          *([] if report else ["--noreport"])]


def shell_line(argv: Sequence[str]) -> str:
  return shlex.join(argv)


def load_config(argument: str, overrides: Sequence[str]):
  """The ConfigDict main would build from `--config=ARGUMENT --config.x=y …` (same parser)."""
  argv = ["main", f"--config={argument}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "experiment config", flag_values=values,
                                  lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


def variants(config: str) -> tuple[str, ...]:
  """The VARIANTS tuple of a config file (the study scripts sweep over all of them)."""
  if not os.path.isfile(config):
    raise ValueError(f"config file {config!r} not found")
  found = runpy.run_path(config).get("VARIANTS")
  if not found:
    raise ValueError(f"{config} has no VARIANTS tuple; a study sweeps over its variants")
  return tuple(found)


def check(config: str, fixed: Sequence[str], trials: Sequence[Mapping[str, str]]) -> None:
  """Every trial's config loads and passes validate, else a ValueError naming the field.

  Each override is first tried alone: ml_collections' own errors do not always say which
  flag they are about ("'nothere'")."""
  from cnnviz_jax.train import validate  # pylint: disable=import-outside-toplevel  (jax: slow)
  checked = set()
  for trial in trials:
    argument = config_argument(config, trial)
    for override in [None, *overrides(config, fixed, trial)]:
      if (argument, override) in checked:
        continue
      checked.add((argument, override))
      try:
        load_config(argument, [override] if override else [])
      except Exception as e:  # pylint: disable=broad-except
        if override is None:
          raise ValueError(f"--config={argument}: {type(e).__name__}: {e}") from e
        field = override.split("=", 1)[0].lstrip("-")
        raise ValueError(f"{field}: cannot set {override!r} on --config={argument}: "
                         f"{type(e).__name__}: {e}") from e
    try:
      validate.validate(load_config(argument, overrides(config, fixed, trial)))
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"trial {dict(trial)}: {e}") from e


def merge(workdir: epath.Path, config: str, fixed: Sequence[str],
          trials: Sequence[Mapping[str, str]]) -> list[dict]:
  """W/trials.json after adding `trials`: earlier trials keep their ids, new ones are
  appended. A different config or fixed overrides in the same workdir is an error."""
  path = workdir / TRIALS_FILE
  stored = json.loads(path.read_text()) if path.exists() else {
      "config": config, "overrides": list(fixed), "trials": []}
  if (stored["config"], stored["overrides"]) != (config, list(fixed)):
    raise ValueError(
        f"{path} is a sweep of --config={stored['config']} with overrides "
        f"{stored['overrides']}; this command has --config={config} with {list(fixed)}. Use "
        "another --workdir for a different sweep.")
  known = [t["params"] for t in stored["trials"]]
  for trial in trials:
    if dict(trial) not in known:
      known.append(dict(trial))
      index = len(stored["trials"])
      stored["trials"].append({"id": index, "name": trial_name(index), "params": dict(trial)})
  workdir.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(stored, indent=1))
  return stored["trials"]

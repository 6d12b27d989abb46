"""A training run over an existing workdir trains with the config the workdir was trained with.

The run's config is compared with W/config.json field by field, after the same JSON writing
(tuples become lists, placeholders None), before anything is written. A difference refuses
the run (ConfigChangedError: one line per field, old -> new) unless the run allows changes
(`--config_change=allow`): then they are recorded in W/config_changes.json with the step they
start at (Workdir.write_config) and the run goes on with the new config. FREE_FIELDS cannot
change what is trained: they change without a record (config.json takes their new value, as
the run uses it).
"""
import json
import logging

import ml_collections

from cnnviz_jax.train.workdir import Workdir, WorkdirError

MODES = ("refuse", "allow")
# How many checkpoints are kept and how often one is saved inside an epoch (a resume is exact
# from any step), and which splits the final evaluation reports.
FREE_FIELDS = ("checkpoint_keep", "checkpoint_every_steps", "eval_splits")
ABSENT = "(absent)"  # shown for a field one of the two configs lacks
_MISSING = object()


class ConfigChangedError(WorkdirError):
  """A training run over a workdir with a config other than its config.json."""

  def __init__(self, workdir: Workdir, changes: list[dict]):
    super().__init__(
        f"{workdir} was trained with another config ({workdir.config_json}); this run changes:\n"
        + "\n".join(f"  {describe(c)}" for c in changes) + "\n"
        "Train in a new --workdir, or continue this one with the new config from its latest "
        f"checkpoint with --config_change=allow (recorded in {workdir.config_changes_json}).")
    self.changes = changes


def check(workdir: Workdir, config: ml_collections.ConfigDict, mode: str = "refuse"
          ) -> list[dict]:
  """The changes ({field, old, new}) of `config` from W/config.json, free fields left out ([]
  on a new workdir). mode 'refuse': ConfigChangedError if there are any. Writes nothing."""
  if mode not in MODES:
    raise ValueError(f"config_change must be one of {', '.join(MODES)}; got {mode!r}")
  if not workdir.config_json.exists():
    return []
  changes = differences(workdir.read_json(workdir.config_json),
                        json.loads(config.to_json_best_effort()))
  free = [c for c in changes if is_free(c["field"])]
  if free:
    logging.info("free config fields changed (config.json takes them): %s",
                 "; ".join(describe(c) for c in free))
  changes = [c for c in changes if not is_free(c["field"])]
  if changes and mode == "refuse":
    raise ConfigChangedError(workdir, changes)
  if changes:
    logging.warning("config changes allowed (recorded in %s): %s", workdir.config_changes_json,
                    "; ".join(describe(c) for c in changes))
  return changes


def differences(old, new, path: str = "config") -> list[dict]:
  """Where two configs (JSON values) differ, in field order: {field, old, new}, with 'old' or
  'new' left out where that side lacks the field. Mappings and lists of mappings (stages) are
  compared entry by entry; any other value (a list of numbers too) as a whole."""
  if isinstance(old, dict) and isinstance(new, dict):
    pairs = [(f"{path}.{key}", old.get(key, _MISSING), new.get(key, _MISSING))
             for key in sorted(set(old) | set(new))]
  elif _list_of_mappings(old) and _list_of_mappings(new):
    pairs = [(f"{path}[{i}]", old[i] if i < len(old) else _MISSING,
              new[i] if i < len(new) else _MISSING) for i in range(max(len(old), len(new)))]
  else:
    same = json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)  # NaN == NaN
    return [] if same else [{"field": path, "old": old, "new": new}]
  out = []
  for field, a, b in pairs:
    if a is _MISSING or b is _MISSING:
      out.append({"field": field, **({"old": a} if b is _MISSING else {"new": b})})
    else:
      out += differences(a, b, field)
  return out


def _list_of_mappings(value) -> bool:
  return isinstance(value, list) and any(isinstance(v, dict) for v in value)


def is_free(field: str) -> bool:
  name = field.removeprefix("config.")
  return any(name == f or name.startswith((f + ".", f + "[")) for f in FREE_FIELDS)


def value_text(change: dict, side: str) -> str:
  """A change's old or new value as Python writes it (ABSENT where that side lacks it)."""
  return repr(change[side]) if side in change else ABSENT


def describe(change: dict) -> str:
  """'config.stages[0].schedule.lr: 0.003 -> 0.01'"""
  return f"{change['field']}: {value_text(change, 'old')} -> {value_text(change, 'new')}"

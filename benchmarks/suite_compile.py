"""Where the test suite's time goes in JAX compilation, per test file.

A pytest plugin that sums JAX's own compile events (`jax.monitoring`: tracing, lowering to
MLIR, XLA backend compile, persistent-cache savings) per test in each xdist worker, and a
report of the sums. In-process work only: the CLI runs the tests start are not counted.

  PYTHONPATH=benchmarks .venv/bin/python -m pytest tests -q -n 2 -p suite_compile \
      --durations=0 > suite.log
  .venv/bin/python benchmarks/suite_compile.py suite.log    # the table, heaviest files first

Sums go to $SUITE_COMPILE_DIR (default /tmp/suite_compile), one JSON file per worker.
"""
import collections
import json
import os
import pathlib
import re
import sys

import pytest

_DIR = pathlib.Path(os.environ.get("SUITE_COMPILE_DIR", "/tmp/suite_compile"))
_EVENTS = {"/jax/core/compile/backend_compile_duration": "compile",
           "/jax/core/compile/jaxpr_trace_duration": "trace",
           "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
           "/jax/compilation_cache/compile_time_saved_sec": "cache_saved"}
_current = ["(fixtures before the first test)"]  # the test running now
_listening = []  # one registration per process
_sums = collections.defaultdict(lambda: collections.defaultdict(float))


def _listener(event, duration, **_):
  if event in _EVENTS:
    _sums[_current[0]][_EVENTS[event]] += duration


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
  if not _listening:  # jax imported here, after tests/conftest.py has set its environment
    from jax import monitoring  # pylint: disable=import-outside-toplevel
    monitoring.register_event_duration_secs_listener(_listener)
    _listening.append(True)
  _current[0] = item.nodeid  # fixture set-up counts for the first test that needs it
  yield


def pytest_sessionfinish(session):  # pylint: disable=unused-argument
  _DIR.mkdir(parents=True, exist_ok=True)
  worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
  (_DIR / f"{worker}.json").write_text(json.dumps({k: dict(v) for k, v in _sums.items()}))


def _durations(log: pathlib.Path) -> dict:
  """test file -> summed set-up + call + teardown seconds, from pytest's --durations=0."""
  per_file = collections.defaultdict(float)
  for line in log.read_text().splitlines():
    match = re.match(r"([0-9.]+)s (?:call|setup|teardown)\s+(\S+)", line)
    if match:
      per_file[match.group(2).split("::")[0]] += float(match.group(1))
  return per_file


def report(log: pathlib.Path) -> None:
  per_file = collections.defaultdict(lambda: collections.defaultdict(float))
  for path in _DIR.glob("*.json"):
    for test, sums in json.loads(path.read_text()).items():
      for kind, seconds in sums.items():
        per_file[test.split("::")[0]][kind] += seconds
  durations = _durations(log)
  total = sum(durations.values())
  kinds = list(_EVENTS.values())
  print(f"summed test time {total:.0f} s; " + ", ".join(
      f"{kind} {sum(s[kind] for s in per_file.values()):.0f} s" for kind in kinds))
  print(f"{'test s':>7} " + " ".join(f"{k:>11}" for k in kinds) + "  file")
  for name in sorted(durations, key=durations.get, reverse=True)[:30]:
    sums = per_file.get(name, {})
    print(f"{durations[name]:7.1f} " + " ".join(f"{sums.get(k, 0.0):11.1f}" for k in kinds)
          + f"  {name}")


if __name__ == "__main__":
  report(pathlib.Path(sys.argv[1]))

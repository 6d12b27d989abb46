"""Benchmark plumbing: run a worker per core count (taskset), time callables alternately."""
import os
import subprocess
import sys
import time
from typing import Callable

import numpy as np


def run_per_core_count(script: str, extra_args: list[str], core_sets=("0", "0,1")) -> None:
  """Re-runs `script --worker` pinned to each core set (XLA sizes its pool from them)."""
  available = os.sched_getaffinity(0)
  for cores in core_sets:
    if not {int(c) for c in cores.split(",")} <= available:
      print(f"skipping cores {cores}: only {sorted(available)} available")
      continue
    print(f"\n=== {len(cores.split(','))} core(s) (taskset -c {cores}) ===", flush=True)
    subprocess.run(["taskset", "-c", cores, sys.executable, script, "--worker", *extra_args],
                   check=True)


def alternate(timed: dict[str, Callable[[], None]], repeats: int, warmup: int = 2
              ) -> dict[str, float]:
  """Median seconds per call of each function, calling them in turn so load drifts hit all."""
  for fn in timed.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in timed}
  for _ in range(repeats):
    for name, fn in timed.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}

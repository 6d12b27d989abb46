"""What tests across tests/ share: the repository root, Python processes started from it as a
user starts them, and comparisons of arrays and pytrees.

Every test module can `import helpers`: pytest puts tests/ on sys.path when it imports
tests/conftest.py (its default `prepend` import mode), and that conftest imports this module,
which puts the repository root there too. Nothing here imports JAX at module level: the
conftest imports this before it points JAX at the run's compilation cache, and JAX reads its
environment when it is imported.
"""
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # configs/ and experiments/ are top-level packages, as for `-m`
  sys.path.insert(0, str(ROOT))


def python(*args, env=None, wait=True, timeout: float | None = 900):
  """`python args…` from the repository root on the CPU, `env` added to this process's: the
  completed process with its output captured (killed after `timeout` s, so that a hung child
  fails its test rather than the run), or (wait=False) the running one, stdout and stderr
  merged into its stdout."""
  command = [sys.executable, *map(str, args)]
  environment = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
  if not wait:
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
  return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                        check=False, timeout=timeout)


def eight_devices() -> dict:
  """The environment of a child process that simulates 8 CPU devices, with the kernels that
  importing cnnviz_jax gives this one."""
  from cnnviz_jax import xla_flags  # pylint: disable=import-outside-toplevel  (see above)
  return {"XLA_FLAGS": f"{xla_flags.CPU_FLAGS} --xla_force_host_platform_device_count=8"}


def free_port() -> int:
  """A TCP port free on 127.0.0.1 now (a coordinator's, a server's)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def assert_close_at_scale(name: str, ours, reference) -> None:
  """max |ours - reference| <= 1e-4 of the reference's scale (its max |value|, at least 1)."""
  scale = max(1.0, float(np.abs(reference).max()))
  err = float(np.abs(np.asarray(ours) - reference).max())
  assert err <= 1e-4 * scale, f"{name}: max abs diff {err:.3g} at output scale {scale:.3g}"


def _leaf_pairs(got, expected, what: str = "") -> list[tuple[str, object, object]]:
  """(path, got's leaf, expected's leaf) of two pytrees that have the same paths, whatever their
  mappings' types (dict, OrderedDict, flax's FrozenDict) and orders."""
  import jax  # pylint: disable=import-outside-toplevel  (see the module's docstring)
  flat = [{jax.tree_util.keystr(path): leaf
           for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
          for tree in (got, expected)]
  assert flat[0].keys() == flat[1].keys(), f"{what} paths of one tree only: " \
      f"{sorted(flat[0].keys() ^ flat[1].keys())}"
  return [(path, flat[0][path], flat[1][path]) for path in flat[1]]


def assert_trees_equal(got, expected, what: str = "", strict: bool = False) -> None:
  """`got` has `expected`'s paths and bit-identical arrays at each (strict: the same dtypes and
  shapes too)."""
  for path, a, b in _leaf_pairs(got, expected, what):
    np.testing.assert_array_equal(a, b, err_msg=f"{what} {path}".lstrip(), strict=strict)


def assert_trees_close(got, expected, atol: float) -> None:
  """`got` has `expected`'s paths and arrays within `atol` (and assert_allclose's rtol, 1e-7)."""
  for path, a, b in _leaf_pairs(got, expected):
    np.testing.assert_allclose(a, b, atol=atol, err_msg=path)


def with_batch_statistics(model, variables, x):
  """variables whose BatchNorm running averages are the batch x's own statistics: flax's
  train mode from zeroed averages with momentum 0.9 stores 0.1 × them. In eval mode these
  normalize as training's forward pass does, the statistics held constant."""
  import jax  # pylint: disable=import-outside-toplevel  (see the module docstring)
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  zeroed = {**variables, "batch_stats": jax.tree.map(jnp.zeros_like, variables["batch_stats"])}
  _, updated = model.apply(zeroed, x, train=True, mutable=["batch_stats"])
  return {**variables, "batch_stats": jax.tree.map(lambda s: s / 0.1, updated["batch_stats"])}

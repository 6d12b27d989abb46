"""What tests across tests/ share: the repository root, and Python processes started from it
as a user starts them.

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

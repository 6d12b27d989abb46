"""Devices of every process as one Mesh: the batch axis is sharded, parameters replicated.

The batch sharding itself is the input pipeline's (data.layout.batch_sharding). The
same code runs on 1 CPU, on simulated devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8), on several local processes
(jax.distributed with gloo CPU collectives) and on TPU pods / GPU clusters.
"""
import os
import socket

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins a multi-process run, or starts a one-process one on this machine.

  Explicit arguments (e.g. two local CPU processes) or auto-detection: TPU VMs and
  Slurm (`srun`) provide everything to `jax.distributed.initialize()`; there process 0's
  coordinator listens on every interface at the port of `coordinator_address` (the other
  processes connect to it). A single process runs the coordination service alone, on
  loopback: jax's preemption sync manager (a SIGTERM becomes a checkpoint, then a clean
  exit) needs it, and nothing outside this machine needs to reach it.
  """
  many = bool(coordinator_address) or int(os.environ.get("SLURM_NTASKS", "1")) > 1 or bool(
      os.environ.get("TPU_WORKER_HOSTNAMES"))
  # CPU processes need gloo for their collectives (ignored on TPU/GPU). One process has no
  # collectives to make with others, and gloo would listen on the host name's address.
  jax.config.update("jax_cpu_collectives_implementation", "gloo" if many else None)
  if coordinator_address:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif many:
    jax.distributed.initialize()
  else:
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      address = f"127.0.0.1:{s.getsockname()[1]}"
    jax.distributed.initialize(address, num_processes=1, process_id=0,
                               coordinator_bind_address=address)  # jax's default: [::]


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Parameters and optimizer state: a full copy on every device."""
  return NamedSharding(mesh, PartitionSpec())

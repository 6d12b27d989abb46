"""Runs the input pipeline in a fresh process (test_pipeline.py starts it) and saves what this
process's devices got.

Usage: pipeline_worker.py OUT.npz DATA_DIR [PROCESS_ID NUM_PROCESSES PORT]
With a process id it joins a local jax.distributed run (gloo CPU collectives). Simulated
devices come from XLA_FLAGS, set by the caller before this process imports jax.
With PIPELINE_STREAM=1, DATA_DIR holds the shapes in array_record and every example streams.
"""
import os
import sys

import numpy as np

# the small shapes dataset of the data tests (conftest.py generates it once per session)
SHAPES = dict(num_classes=4, image_size=16, num_train=120, num_validation=37, num_test=0, seed=3)


def local_rows(array) -> tuple[np.ndarray, np.ndarray]:
  """(rows, data) of this process's addressable shards, in row order, deduplicated."""
  seen = {}
  for shard in array.addressable_shards:
    start = shard.index[0].start or 0
    seen[start] = np.asarray(shard.data)
  starts = sorted(seen)
  rows = np.concatenate([np.arange(s, s + len(seen[s])) for s in starts])
  return rows, np.concatenate([seen[s] for s in starts])


def main(out, data_dir, *dist):
  import jax  # pylint: disable=import-outside-toplevel
  if dist:
    process_id, num_processes, port = map(int, dist)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=num_processes, process_id=process_id)
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.data import config, pipeline  # pylint: disable=import-outside-toplevel
  cfg = dict(name="shapes", data_dir=data_dir, shapes=SHAPES, batch_size=8, image_size=16,
             augment=config.KERAS_SEED_001, seed=1)
  if os.environ.get("PIPELINE_STREAM") == "1":
    cfg.update(file_format="array_record", cache_budget_mb=0)
  saved = {"num_devices": jax.device_count()}
  it = pipeline.train_iterator(cfg, start_step=12)  # crosses the epoch boundary at 15
  saved["streaming"] = it.streaming
  for step in range(12, 18):
    batch = next(it)
    for key in ("image", "label", "index", "object_mask"):
      rows, saved[f"train_{step}_{key}"] = local_rows(batch[key])
    saved[f"train_{step}_rows"] = rows
  ev = pipeline.eval_iterator(cfg, eval_batch_size=16)
  saved["eval_streaming"] = ev.streaming
  total = 0.0
  for i, batch in enumerate(ev):
    _, saved[f"eval_{i}_index"] = local_rows(batch["index"])
    _, saved[f"eval_{i}_valid"] = local_rows(batch["valid"])
    total += float(jax.jit(jnp.sum)(batch["valid"]))  # a global reduction over all hosts
  saved["eval_valid_total"] = total
  try:
    pipeline.train_iterator(cfg, batch_size=jax.device_count() + 1 if jax.device_count() > 1
                            else 0)
  except ValueError as e:
    saved["error"] = str(e)
  np.savez(out, **saved)
  if dist:
    jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])

"""Optional: every trial this sweep ran, as a Weights & Biases run (--wandb; needs wandb)."""
from etils import epath

from cnnviz_jax import storage
from cnnviz_jax.train.workdir import Workdir
from experiments import sweep_table


def log_trials(workdir: epath.Path, trials: list[dict], table: list[dict], project: str,
               skipped=()) -> None:
  """One wandb run per trial finished now: its parameters as config, history.json's epochs
  as steps, the results table's numbers as summary; grouped by the sweep's directory."""
  import wandb  # pylint: disable=import-outside-toplevel
  for trial, row in zip(trials, table):
    directory = workdir / trial["name"]
    if trial["name"] in skipped or row["status"] != "finished":
      continue
    run = wandb.init(project=project, group=workdir.name, name=trial["name"],
                     config=trial["params"], dir=None if storage.is_url(directory) else str(directory),  # wandb: local
                     reinit=True)
    for record in Workdir(directory).history():
      run.log({k: v for k, v in record.items() if k not in ("stage", "epoch")})
    run.summary.update({k: row[k] for k in (*sweep_table.METRICS, "wall_s")})
    run.finish()

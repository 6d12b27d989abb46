r"""Entry point: python -m cnnviz_jax.main --config configs/demo.py --workdir W.

Until training lands (issue 5) the job builds the configured model, lists its
tappable layers, runs one forward pass on a batch and writes a summary to W.
"""
import json
import pathlib

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Experiment config (a configs/*.py file).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results and the report.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from cnnviz_jax import models  # pylint: disable=import-outside-toplevel

  config = FLAGS.config
  workdir = pathlib.Path(FLAGS.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))

  model = models.create(config.model.name, num_classes=config.num_classes,
                        head=config.model.head, **config.model.options)
  size = config.image_size
  x = np.random.RandomState(config.seed).rand(config.batch_size, size, size, 3).astype(np.float32)
  variables = jax.jit(model.init)(jax.random.key(config.seed), x)
  logits, taps = models.apply_with_taps(model, variables, x, models.layer_names(model, variables, x))
  summary = {
      "model": config.model.name,
      "parameters": int(sum(p.size for p in jax.tree.leaves(variables["params"]))),
      "layers": {name: list(a.shape) for name, a in taps.items()},
      "logits_shape": list(logits.shape),
      "devices": [str(d) for d in jax.devices()],
  }
  (workdir / "model_summary.json").write_text(json.dumps(summary, indent=1))
  print(f"{config.model.name}: {summary['parameters']:,} parameters on {jax.device_count()} "
        f"device(s)")
  for name, shape in summary["layers"].items():
    print(f"  {name:16s} {tuple(shape)}")
  print(f"  logits           {tuple(logits.shape)}")
  print(f"wrote {workdir / 'model_summary.json'}")


if __name__ == "__main__":
  app.run(main)

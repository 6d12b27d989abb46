r"""Entry point: python -m cnnviz_jax.main --config configs/demo.py --workdir W [--config.x=y].

Trains and evaluates as the config says; the workdir ends with orbax checkpoints,
TensorBoard events, history.json, config.json, results.json and report.html (figures in
W/figures; --noreport skips it). `--mode=report --workdir W` (re)writes the report of an
existing workdir, finished or partial. `--mode=evaluate --workdir W [--config other.py]
[--checkpoint best|latest|STEP] [--splits test]` evaluates a trained workdir and writes
W/eval/NAME.json in results.json's schema. Run the same command
again to resume a killed run exactly. Multi-process: every process runs the same
command; on TPU VMs and under Slurm jax.distributed is configured automatically, or
pass --coordinator_address/--num_processes/--process_id.
"""
import difflib
import re
import sys

from absl import app, flags
from ml_collections import config_flags

from cnnviz_jax import console, errors

config_flags.DEFINE_config_file("config", None, "Experiment config (a configs/*.py file).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results and the report.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator_address).")
flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.DEFINE_enum("mode", "train", ["train", "evaluate", "report"],
                  "train (then report); evaluate a trained --workdir (on its own data, or on "
                  "--config's); or only the report of an existing --workdir.")
flags.DEFINE_string("checkpoint", "best", "evaluate: best, latest or a saved step number.")
flags.DEFINE_list("splits", None, "evaluate: the splits (default: the config's eval_splits).")
flags.DEFINE_string("eval_name", None, "evaluate: W/eval/NAME.json (default: data_checkpoint).")
flags.DEFINE_bool("report", True, "Write W/report.html after training.")
flags.DEFINE_enum("config_change", "refuse", ["refuse", "allow"],
                  "Training over a workdir with a config other than its config.json: refuse, "
                  "or allow it from the latest checkpoint on (recorded in "
                  "W/config_changes.json).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS
REPORT_TIMEOUT_S = 3600  # how long other processes wait for process 0's report
PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, as if the signal had ended it: not finished


def main(argv):
  console.configure(FLAGS.verbosity)  # before TensorFlow loads
  with errors.exit_on_user_error(FLAGS.verbosity):
    if len(argv) > 1:
      raise errors.UserInputError(f"unexpected arguments: {argv[1:]}")
    _run()


def _run() -> None:
  from cnnviz_jax import storage  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import mesh, validate  # pylint: disable=import-outside-toplevel
  try:  # a mistyped URL fails here, not as a local folder named 'gs:'
    storage.path(FLAGS.workdir)
  except storage.PathError as e:
    raise storage.PathError(f"--workdir: {e}") from e

  if FLAGS.mode == "report":
    _report(FLAGS.workdir)
    return
  if FLAGS.mode == "evaluate":
    _evaluate()
    return
  if FLAGS.config is None:
    raise errors.UserInputError("--config is required to train (or use --mode=report)")
  # first: validation may trace the model (a CAM layer's name), which starts JAX's backend
  mesh.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  validate.validate(FLAGS.config)
  from cnnviz_jax.train import loop  # pylint: disable=import-outside-toplevel  (TensorFlow: after validation)
  try:
    results = loop.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                      config_change=FLAGS.config_change)
  except loop.Preempted as e:
    print(e)
    sys.exit(PREEMPTED_EXIT_CODE)
  print(f"accuracy: {_accuracies(results)}\nresults: {FLAGS.workdir}/results.json")
  if FLAGS.report:
    import jax  # pylint: disable=import-outside-toplevel
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    try:
      if jax.process_index() == 0:
        _report(FLAGS.workdir)
    finally:
      if jax.process_count() > 1:  # the others wait: an early exit would abort process 0
        ocp.multihost.sync_global_processes("report_written", timeout=REPORT_TIMEOUT_S,
                                            processes=set(range(jax.process_count())))


def _evaluate() -> None:
  from cnnviz_jax.train import evaluate, mesh, validate  # pylint: disable=import-outside-toplevel
  mesh.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if FLAGS.config is not None:
    validate.validate(FLAGS.config)
  path, record = evaluate.evaluate_workdir(FLAGS.workdir, FLAGS.config, FLAGS.checkpoint,
                                           FLAGS.splits, FLAGS.eval_name)
  print(f"accuracy ({record['checkpoint']}): {_accuracies(record)}\nresults: {path}")


def _accuracies(results: dict) -> str:
  """'train 99.00%, test 97.50%' from a results.json or eval/NAME.json record."""
  return ", ".join(f"{split} {r['accuracy']:.2%}" for split, r in results["splits"].items())


def _report(workdir: str) -> None:
  from cnnviz_jax.report import build  # pylint: disable=import-outside-toplevel
  build.print_workdir_report(workdir)


def _override_problem(argv) -> str | None:
  """Which `--config.a.b=…` of argv names no field of its config file, and why
  (ml_collections itself raises a bare KeyError or AttributeError)."""
  files = [a.split("=", 1)[1] if "=" in a else b for a, b in zip(argv[1:], argv[2:] + [""])
           if a.split("=")[0] == "--config"]
  if not files:
    return None
  config = FLAGS["config"].parser.parse(files[-1])  # the file, without the overrides
  for arg in argv[1:]:
    if arg.startswith("--config."):
      problem = _missing_field(config, arg.split("=")[0][len("--config."):])
      if problem:
        return f"{arg.split('=')[0]}: {problem} (configs/default.py lists every field)"
  return None


def _missing_field(config, path: str) -> str | None:
  """Why the override path 'stages[0].optimizer.nam' does not name a field of `config`
  (with the closest field names), or None if it does."""
  node = config
  for token in re.findall(r"[^.\[\]]+", path):
    if token.isdigit() and isinstance(node, (list, tuple)):
      if int(token) >= len(node):
        return f"index {token} is beyond the {len(node)} entries"
      node = node[int(token)]
      continue
    fields = list(node.keys()) if hasattr(node, "keys") else []
    if token not in fields:
      close = difflib.get_close_matches(token, fields, n=1)
      return f"the config has no field {token!r}" + (f"; did you mean {close[0]!r}?"
                                                     if close else "")
    node = node[token]
  return None


if __name__ == "__main__":
  app.run(main, flags_parser=lambda argv: errors.parse_flags(argv, _override_problem))

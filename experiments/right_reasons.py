r"""Right for the right reasons: every variant of a decoy config side by side, and the λ sweep.

Run:   python -m experiments.right_reasons --workdir workdir/right_reasons [--report]
       the λ sweep, each penalized variant × region × weight (the unpenalized ones once):
       python -m experiments.right_reasons --workdir workdir/rr_sweep \
           --weights 1e-3,1e-2,1e-1,1,10,100,1e3,1e4,1e5 [--regions annotated] \
           [--grid variant=plain,input_gradient,decoy_free] [--config configs/decoy_digits.py]
With experiments/sweep.py's flags (--parallel, --print_commands, --table_only, …); the
config defaults to configs/right_reasons.py (decoy shapes), --config configs/decoy_digits.py
runs the decoy digits. W/results.md and W/accuracy.png are the sweep's; W/right_reasons.md
(and .csv) add, per finished trial (cached in its right_reasons.json):
  test_no_patch      test accuracy on the decoy-free twin (same images, no patch)
  gradcam_in_mask    Grad-CAM's mass in the object mask (predicted class, last spatial
                     layer, decoy test images; '–' for a model without one, the MLP)
  gradient_in_patch  the input-gradient energy's share on the patch (predicted class's logit,
                     decoy test images): what the input-gradient penalty acts on
A model that took the shortcut: high val, test and test_no_patch near chance. With --report
each trial's report.html has the "Right for the right reasons?" section. The configs'
docstrings give the measured tables.
"""
from absl import app, flags

from experiments import right_reasons_table, space, sweep
from experiments import trials as trials_lib

CONFIG = "configs/right_reasons.py"
REGIONS = ("outside_object", "annotated")
WEIGHT = "config.explanation_loss.weight"
REGION = "config.explanation_loss.region"

flags.DEFINE_list("weights", [], "λ values: each penalized variant runs at each (with each "
                  "--regions); the unpenalized variants run once. Empty: every variant once, "
                  "as its config sets it.")
flags.DEFINE_list("regions", list(REGIONS), "With --weights: the penalty regions swept.")
FLAGS = flags.FLAGS


def _penalized(config: str, variant: str) -> bool:
  return bool(trials_lib.load_config(f"{config}:{variant}", []).explanation_loss.kind)


def plan(argv):
  """sweep's plan over the config's variants (or the --grid variant subset); with
  --weights, the penalized ones expand into region × weight trials."""
  bad = [r for r in FLAGS.regions if r not in REGIONS]
  if bad:
    raise app.UsageError(f"--regions {bad}; valid: {', '.join(REGIONS)}")
  if not FLAGS["grid"].present:  # the default names configs/right_reasons.py's variants
    FLAGS.grid = [f"{space.VARIANT}={','.join(trials_lib.variants(FLAGS.config))}"]
  config, fixed, planned, metric = sweep.plan_from_flags(argv)
  if not FLAGS.weights:
    return config, fixed, planned, metric
  weights = space.parse_values(WEIGHT, ",".join(FLAGS.weights))
  trials = []
  for trial in planned:
    if not _penalized(config, trial[space.VARIANT]):
      trials.append(trial)
      continue
    trials += [{**trial, REGION: region, WEIGHT: weight}
               for region in FLAGS.regions for weight in weights]
  try:
    trials_lib.check(config, fixed, trials)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  return config, fixed, trials, metric


if __name__ == "__main__":
  sweep.run_study(CONFIG, plan, right_reasons_table.write)

"""experiments/right_reasons.py --weights: the penalized variants × regions × λ, the
unpenalized ones once, each trial one ordinary main command."""
import shlex

import helpers

WEIGHT, REGION = "--config.explanation_loss.weight", "--config.explanation_loss.region"


def test_weights_expand_only_the_penalized_variants(tmp_path):
  result = helpers.python("-m", "experiments.right_reasons", f"--workdir={tmp_path / 'w'}",
                          "--config=configs/decoy_digits.py", "--weights=10,1e3",
                          "--regions=annotated,outside_object", "--print_commands",
                          "--grid=variant=mlp_plain,mlp_input_gradient,mlp_decoy_free")
  assert result.returncode == 0, result.stderr[-3000:]
  planned = []
  for line in result.stdout.strip().splitlines():
    argv = shlex.split(line)
    flags = dict(a.split("=", 1) for a in argv if a.startswith("--config"))
    planned.append((flags["--config"].split(":")[1], flags.get(REGION), flags.get(WEIGHT)))
  penalized = [("mlp_input_gradient", r, w) for r in ("annotated", "outside_object")
               for w in ("10", "1e3")]
  assert planned == [("mlp_plain", None, None), *penalized, ("mlp_decoy_free", None, None)]


def test_a_bad_region_is_an_error_before_any_trial(tmp_path):
  result = helpers.python("-m", "experiments.right_reasons", f"--workdir={tmp_path / 'w'}",
                          "--weights=10", "--regions=patch", "--print_commands")
  assert result.returncode != 0
  assert "--regions ['patch']; valid: outside_object, annotated" in result.stderr

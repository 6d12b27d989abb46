r"""Right for the right reasons on the decoy shapes: every variant of the config, side by side.

Run:   python -m experiments.right_reasons --workdir workdir/right_reasons --report [--parallel 2]
The sweep over every variant of configs/right_reasons.py, with experiments/sweep.py's flags:
W/results.md and W/accuracy.png compare validation and test accuracy (a model that took the
shortcut: high validation, test at chance); with --report, each W/trial_NNN/report.html has
the "Right for the right reasons?" section: its Grad-CAM mass in the object mask as a
number and overlays of the images it places least on the object (for `plain`: the decoy
patch lit up). The config's docstring gives the measured results.
"""
from experiments import sweep

CONFIG = "configs/right_reasons.py"

if __name__ == "__main__":
  sweep.run_study(CONFIG)

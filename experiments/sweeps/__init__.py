"""Sweep configs: `python -m experiments.sweep --sweep experiments/sweeps/<name>.py --workdir W`."""

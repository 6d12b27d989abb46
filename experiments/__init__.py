"""Experiments: the sweep runner (`python -m experiments.sweep`) and one script per seed study.

A study is a sweep over its config's VARIANTS; a trial is one ordinary
`python -m cnnviz_jax.main` command with its own workdir.
"""

"""The sweep's figures (matplotlib, Agg): what wandb drew for seed 000 — parallel coordinates
and the parameters' correlation with / importance for the metric — and the trials' accuracies
side by side (a study's variants)."""
import warnings
from collections.abc import Sequence

import matplotlib
from etils import epath

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position
from scipy import stats  # noqa: E402  pylint: disable=wrong-import-position

from cnnviz_jax import storage  # noqa: E402  pylint: disable=wrong-import-position
from experiments.sweep_table import (  # noqa: E402  pylint: disable=wrong-import-position
    finished, short_name, short_value)


def numeric(values: Sequence[str]) -> bool:
  """Whether a parameter's values are all numbers (else it is categorical)."""
  try:
    [float(v) for v in values]  # pylint: disable=expression-not-assigned
  except ValueError:
    return False
  return not any(v in ("True", "False") for v in values)


def _axis(values: Sequence[str]) -> tuple[np.ndarray, list[tuple[float, str]]]:
  """Positions in [0, 1] of one parallel-coordinates axis and its (position, label) ticks;
  numbers spanning ≥ 10× on a log scale, categories evenly spaced in order of appearance."""
  if numeric(values):
    x = np.asarray([float(v) for v in values])
    log = x.min() > 0 and x.max() / x.min() >= 10
    t = np.log10(x) if log else x
    span = t.max() - t.min()
    position = (t - t.min()) / span if span else np.full_like(t, 0.5)
    distinct = sorted(set(x))
    marks = distinct if len(distinct) <= 6 else list(
        10 ** np.linspace(t.min(), t.max(), 5) if log else np.linspace(t.min(), t.max(), 5))
    ticks = [(((np.log10(m) if log else m) - t.min()) / span if span else 0.5, f"{m:.3g}")
             for m in marks]
    return position, ticks
  categories = list(dict.fromkeys(values))
  step = 1 / (len(categories) - 1) if len(categories) > 1 else 0
  where = {c: i * step if step else 0.5 for i, c in enumerate(categories)}
  return np.asarray([where[v] for v in values]), [(where[c], short_value(c)) for c in categories]


def parallel_coordinates(table: Sequence[dict], parameters: Sequence[str], metric: str,
                         path: epath.Path) -> None:
  """One polyline per finished trial across the parameters' axes and the metric's, colored
  by the metric."""
  done = finished(table, metric)
  names = [*parameters, metric]
  fig, ax = plt.subplots(figsize=(max(6.0, 2.4 * len(names)), 4.8))
  if done:
    axes = [_axis([str(r[n]) if n != metric else repr(r[n]) for r in done]) for n in names]
    positions = np.stack([p for p, _ in axes], axis=1)  # (trials, axes)
    values = np.asarray([r[metric] for r in done])
    norm = matplotlib.colors.Normalize(values.min(), values.max() + (values.max() == values.min()))
    cmap = plt.get_cmap("viridis")
    for row, value in sorted(zip(positions, values), key=lambda p: p[1]):  # best drawn on top
      ax.plot(range(len(names)), row, color=cmap(norm(value)), lw=1.8, alpha=0.85)
    for i, (_, ticks) in enumerate(axes):
      ax.axvline(i, color="black", lw=1)
      for y, label in ticks:
        ax.text(i + 0.03, y, label, fontsize=8, va="center")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=ax, label=metric)
  else:
    ax.text(0.5, 0.5, "no finished trial yet", ha="center", transform=ax.transAxes)
  ax.set_xticks(range(len(names)), [short_name(n) for n in names], rotation=10, fontsize=9)
  ax.set_yticks([])
  ax.set_xlim(-0.2, len(names) - 0.5)
  ax.set_ylim(-0.08, 1.08)
  for side in ("left", "right", "top"):
    ax.spines[side].set_visible(False)
  ax.set_title(f"Parallel coordinates of {len(done)} trial(s), colored by {metric}")
  fig.tight_layout()
  storage.write_figure(fig, path, dpi=110)
  plt.close(fig)


def importance(table: Sequence[dict], parameters: Sequence[str],
               metric: str) -> tuple[dict[str, float], dict[str, float]]:
  """({label: Spearman correlation with the metric}, {parameter: importance}).

  Numbers: the parameter's Spearman ρ, importance ρ². Categories: ρ of each value's 0/1
  indicator (as wandb one-hot encodes them), importance η² — the share of the metric's rank
  variance between the value groups. Both importances are fractions of the metric's rank
  variance one parameter explains alone; constant inputs give 0."""
  done = finished(table, metric)
  correlation, share = {}, {}
  if len(done) < 2:
    return correlation, share
  ranks = stats.rankdata([r[metric] for r in done])
  with warnings.catch_warnings():  # a parameter constant over the finished trials is 0
    warnings.simplefilter("ignore", stats.ConstantInputWarning)

    def rho(x):
      value = stats.spearmanr(x, ranks).statistic
      return 0.0 if np.isnan(value) else float(value)

    for name in parameters:
      values = [str(r[name]) for r in done]
      if numeric(values):
        correlation[short_name(name)] = rho([float(v) for v in values])
        share[short_name(name)] = correlation[short_name(name)] ** 2
        continue
      groups = {}
      for value, rank in zip(values, ranks):
        groups.setdefault(value, []).append(rank)
      for i, value in enumerate(groups):
        label = f"{short_name(name)}={short_value(value)}"
        label += f" #{i}" if label in correlation else ""  # long values cut alike
        correlation[label] = rho([v == value for v in values])
      total = np.sum((ranks - ranks.mean()) ** 2)
      between = sum(len(g) * (np.mean(g) - ranks.mean()) ** 2 for g in groups.values())
      share[short_name(name)] = float(between / total) if total else 0.0
  return correlation, share


def parameter_importance(table: Sequence[dict], parameters: Sequence[str], metric: str,
                         path: epath.Path) -> None:
  """Two bar charts: correlation with the metric, and importance (see `importance`)."""
  correlation, share = importance(table, parameters, metric)
  fig, (left, right) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.42 * max(len(correlation), 5)))
  if correlation:
    labels = list(correlation)[::-1]
    left.barh(labels, [correlation[k] for k in labels],
              color=["tab:green" if correlation[k] >= 0 else "tab:red" for k in labels])
    left.axvline(0, color="black", lw=0.8)
    left.set_xlim(-1.05, 1.05)
    names = list(share)[::-1]
    right.barh(names, [share[k] for k in names], color="tab:blue")
    right.set_xlim(0, 1.05)
  else:
    for ax in (left, right):
      ax.text(0.5, 0.5, "needs ≥ 2 finished trials", ha="center", transform=ax.transAxes)
  left.set_title(f"Spearman correlation with {metric}", fontsize=10)
  right.set_title(f"Importance: share of {metric}'s\nrank variance explained alone", fontsize=10)
  fig.tight_layout()
  storage.write_figure(fig, path, dpi=110)
  plt.close(fig)


def _label(row: dict, parameters: Sequence[str]) -> str:
  if len(parameters) == 1:
    return short_value(row[parameters[0]])
  return "\n".join([row["trial"], *(f"{short_name(p).split('.')[-1]}="
                                    f"{short_value(row[p], width=16)}" for p in parameters)])


def accuracy_bars(table: Sequence[dict], parameters: Sequence[str], path: epath.Path) -> None:
  """Train / val / test accuracy of every finished trial, side by side."""
  done = finished(table, "val_accuracy")
  fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(done) + 2), 4.8))
  x = np.arange(len(done))
  for i, (prefix, color) in enumerate((("train", "tab:gray"), ("val", "tab:blue"),
                                       ("test", "tab:orange"))):
    heights = [r[f"{prefix}_accuracy"] or 0.0 for r in done]
    bars = ax.bar(x + (i - 1) * 0.27, heights, 0.27, label=prefix, color=color)
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
  ax.set_xticks(x, [_label(r, parameters) for r in done], fontsize=8)
  ax.set_ylim(0, 1.08)
  ax.set_ylabel("accuracy")
  ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
  ax.set_title(f"Accuracy of {len(done)} finished trial(s)")
  fig.tight_layout()
  storage.write_figure(fig, path, dpi=110)
  plt.close(fig)

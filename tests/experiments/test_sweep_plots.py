"""The parameter importance behind parameter_importance.png, against independent formulas:
Pearson correlation of ranks, and Kruskal-Wallis' H = (N - 1)·η² of the ranks."""
import numpy as np
from scipy import stats

from experiments import sweep_plots


def _table(n: int = 24, seed: int = 3):
  rng = np.random.default_rng(seed)
  lr = rng.uniform(1e-4, 1e-2, n)
  head = rng.choice(["dense128", "dense256", "linear"], n)
  # The metric rises with lr and depends on the head, plus noise (no ties).
  metric = (lr * 100 + np.select([head == "linear", head == "dense256"], [-0.6, 0.3], 0.0)
            + rng.normal(0, 0.05, n))
  table = [{"config.lr": repr(float(a)), "config.model.head": h, "val_accuracy": float(m)}
           for a, h, m in zip(lr, head, metric)]
  return table, lr, head, metric


def test_numeric_parameter_is_its_rank_correlation():
  table, lr, _, metric = _table()
  correlation, share = sweep_plots.importance(table, ["config.lr", "config.model.head"],
                                              "val_accuracy")
  ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731  (no ties here)
  expected = np.corrcoef(ranks(lr), ranks(metric))[0, 1]
  assert np.isclose(correlation["lr"], expected) and correlation["lr"] > 0.3
  assert np.isclose(share["lr"], expected ** 2)


def test_categorical_parameter_is_eta_squared_of_ranks_and_one_hot_correlations():
  table, _, head, metric = _table()
  correlation, share = sweep_plots.importance(table, ["config.lr", "config.model.head"],
                                              "val_accuracy")
  groups = [metric[head == h] for h in np.unique(head)]
  kruskal_h = stats.kruskal(*groups).statistic
  assert np.isclose(share["model.head"], kruskal_h / (len(metric) - 1))
  ranks = np.argsort(np.argsort(metric))
  for h in np.unique(head):
    indicator = (head == h).astype(float)
    assert np.isclose(correlation[f"model.head={h}"], np.corrcoef(indicator, ranks)[0, 1])
  assert correlation["model.head=linear"] < 0  # the planted effect's sign


def test_constant_parameter_and_unfinished_trials_give_zero_not_nan():
  table = [{"config.a": "1", "config.b": "x", "val_accuracy": v} for v in (0.1, 0.5, 0.3)]
  table.append({"config.a": "2", "config.b": "y", "val_accuracy": None})  # failed trial
  correlation, share = sweep_plots.importance(table, ["config.a", "config.b"], "val_accuracy")
  assert correlation == {"a": 0.0, "b=x": 0.0} and share == {"a": 0.0, "b": 0.0}

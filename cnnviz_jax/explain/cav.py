"""Concept activation vectors: a linear SVM trained by SGD on a layer's activations, and the
two-sided t-test that TCAV applies to their scores.

Captum's TCAV (captum.concept) trains its CAVs with `DefaultClassifier`: scikit-learn's
SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3) on a random 67/33 train/test split.
`linear_svm` is that estimator's algorithm (sklearn's `_plain_sgd`) in JAX: hinge loss, L2
penalty, one sample at a time in a fresh random order each epoch, the 'optimal' step size
1 / (alpha (t0 + t − 1)) with Bottou's t0, the weights shrunk by (1 − eta alpha) before each
step, an unpenalized intercept, and the stop after `patience` epochs whose mean objective
(hinge loss + alpha/2 ‖w‖²) improved by less than `tol`. It differs only in the random
orders (JAX's generator, not sklearn's), as two sklearn fits with different seeds do.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp


class LinearFit(NamedTuple):
  weights: jax.Array  # (D,): points to the +1 class
  intercept: jax.Array  # ()
  epochs: jax.Array  # () epochs run


def linear_svm(features: jax.Array, labels: jax.Array, key: jax.Array, *, alpha: float = 0.01,
               tol: float = 1e-3, max_epochs: int = 1000, patience: int = 5) -> LinearFit:
  """SGD linear SVM on features (N, D) with labels (N,) in {−1, +1}; see the module doc."""
  n = features.shape[0]
  typical = (1.0 / alpha**0.5)**0.5
  t0 = 1.0 / (typical * alpha)  # sklearn's optimal_init: hinge's initial step is `typical`

  def sample(carry, i):
    w, b, t, objective = carry
    x, y = features[i], labels[i]
    p = jnp.dot(w, x) + b
    eta = 1.0 / (alpha * (t0 + t - 1))
    margin = y * p <= 1.0
    objective = objective + jnp.where(margin, 1.0 - y * p, 0.0) + alpha * 0.5 * jnp.dot(w, w)
    update = jnp.where(margin, eta * y, 0.0)
    w = w * jnp.maximum(0.0, 1.0 - eta * alpha) + update * x
    return (w, b + update, t + 1, objective), None

  def epoch(state):
    w, b, t, best, stalled, done = state
    order = jax.random.permutation(jax.random.fold_in(key, done), n)
    (w, b, t, objective), _ = jax.lax.scan(sample, (w, b, t, jnp.zeros((), w.dtype)), order)
    mean = objective / n
    stalled = jnp.where(mean > best - tol, stalled + 1, 0)
    return w, b, t, jnp.minimum(best, mean), stalled, done + 1

  dtype = features.dtype
  state = (jnp.zeros(features.shape[1], dtype), jnp.zeros((), dtype), jnp.ones((), dtype),
           jnp.full((), jnp.inf, dtype), 0, 0)
  w, b, _, _, _, done = jax.lax.while_loop(
      lambda s: (s[4] < patience) & (s[5] < max_epochs), epoch, state)
  return LinearFit(w, b, done)


def split_fit(features: jax.Array, labels: jax.Array, key: jax.Array,
              test_fraction: float = 0.33, **fit) -> tuple[LinearFit, jax.Array]:
  """Captum's DefaultClassifier: a random int(test_fraction · N) examples held out, the SVM
  fit on the rest; (fit, held-out accuracy)."""
  n = features.shape[0]
  test = int(test_fraction * n)
  split_key, fit_key = jax.random.split(key)
  order = jax.random.permutation(split_key, n)
  train, held = order[test:], order[:test]
  result = linear_svm(features[train], labels[train], fit_key, **fit)
  predicted = jnp.where(features[held] @ result.weights + result.intercept > 0, 1, -1)
  return result, jnp.mean(predicted == labels[held])


def t_test(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Student's two-sample t-test, equal variances, two-sided (scipy.stats.ttest_ind's
  default): (t statistic, p-value) of samples a (n,) and b (m,)."""
  n, m = a.shape[0], b.shape[0]
  dof = n + m - 2
  pooled = (jnp.sum((a - a.mean())**2) + jnp.sum((b - b.mean())**2)) / dof
  t = (a.mean() - b.mean()) / jnp.sqrt(pooled * (1 / n + 1 / m))
  p = jax.scipy.special.betainc(dof / 2, 0.5, dof / (dof + t**2))
  return t, p

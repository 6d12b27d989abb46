"""experiments/decoy_digits_ross.py: Ross et al.'s training, re-implemented outside the library."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from experiments import decoy_digits_ross as ross

pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def train(tmp_path_factory):
  return ross.load(str(tmp_path_factory.mktemp("tfds")), 4, "train")


def test_the_objective_is_ross_et_al_s_terms_summed(train):
  """Cross-entropy, parameter and swatch-gradient terms against their definitions: the input
  gradient by central differences of Σ_k log p_k, one swatch pixel at a time."""
  x, labels, swatch = (a[:3] for a in train)
  params = ross.initialize(0, (x.shape[1], *ross.HIDDEN, 10))
  params = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
  with jax.enable_x64(True):
    def score(inputs):
      return float(jnp.sum(ross.log_probs(params, jnp.asarray(inputs, jnp.float64))))
    energy = 0.0
    for i, j in zip(*np.nonzero(swatch)):
      step = np.zeros_like(x, np.float64)
      step[i, j] = 1e-3
      energy += ((score(x + step) - score(x - step)) / 2e-3) ** 2
    cross_entropy = -sum(float(ross.log_probs(params, x.astype(np.float64))[k, labels[k]])
                         for k in range(len(x)))
    squared = sum(float(np.sum(w ** 2) + np.sum(b ** 2)) for w, b in params)
    got = float(ross.objective(params, x.astype(np.float64), labels, swatch, 10.0))
  assert got == pytest.approx(cross_entropy + 1e-4 * squared + 10.0 * energy, rel=1e-6)
  assert energy > 0


def test_fit_learns_and_the_penalty_empties_the_swatch(train):
  x, labels, swatch = train
  def swatch_energy(params):  # checked against central differences above
    return float(ross.swatch_energy(params, x, swatch))
  plain = ross.fit(x, labels, swatch, 0.0, epochs=16, seed=0)
  penalized = ross.fit(x, labels, swatch, 100.0, epochs=16, seed=0)
  assert ross.accuracy(plain, x, labels) > 0.7  # chance: 0.1
  assert swatch_energy(penalized) < 0.1 * swatch_energy(plain)


def test_bad_flags_are_named_without_a_traceback():
  for args, message in ((["--weights=1,x"], "--weights takes comma-separated floats; got 1,x"),
                        (["--epochs=0"], "--epochs must be ≥ 1; got 0")):
    result = helpers.python("-m", "experiments.decoy_digits_ross", *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr

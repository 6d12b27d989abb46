"""Exact Shapley values by brute force, for the sampling explainers' convergence tests: the
definition over every coalition of a few segments, independent of the estimators."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np


def exact_shapley(model, variables, x: np.ndarray, segments: np.ndarray, target: int
                  ) -> np.ndarray:
  """(B, F) Shapley values of the F segments (ids 0…F−1) for class `target`, the image on a
  coalition S and zero elsewhere: φ_i = Σ_S |S|! (F−|S|−1)! / F! (v(S ∪ i) − v(S))."""
  count = int(segments.max()) + 1
  coalitions = np.array(list(itertools.product([0, 1], repeat=count)), bool)  # (2^F, F)
  on = coalitions[:, segments]  # (2^F, B, H, W)
  images = np.where(on[..., None], x[None], 0.0).reshape(-1, *x.shape[1:])
  apply = jax.jit(lambda z: model.apply(variables, z))
  value = np.asarray(apply(jnp.asarray(images, jnp.float32)), np.float64)
  value = value[:, target].reshape(len(coalitions), x.shape[0])
  index = {tuple(c): n for n, c in enumerate(coalitions)}
  phi = np.zeros((x.shape[0], count))
  for c in coalitions:
    size = int(c.sum())
    weight = math.factorial(size) * math.factorial(count - size - 1) / math.factorial(count) \
        if size < count else 0.0
    for i in np.flatnonzero(~c):
      with_i = c.copy()
      with_i[i] = True
      phi[:, i] += weight * (value[index[tuple(with_i)]] - value[index[tuple(c)]])
  return phi


def per_segment(attribution: np.ndarray, segments: np.ndarray) -> np.ndarray:
  """(B, F) the value of each segment, read off (B, H, W, C) attributions."""
  count = int(segments.max()) + 1
  return np.stack([[attribution[b][segments[b] == f][0, 0] for f in range(count)]
                   for b in range(len(segments))])


def sampling_error(estimate, model, variables, x, segments, phi, target: int, repeats: int,
                   **kwargs) -> float:
  """Root-mean-square error of estimate(model, variables, x, target, segments, key=…,
  **kwargs) against the exact values phi, over `repeats` independent draws."""
  run = jax.jit(lambda key: estimate(model, variables, jnp.asarray(x), target, segments,
                                     key=key, **kwargs))
  values = np.stack([per_segment(np.asarray(run(jax.random.key(seed))), segments)
                     for seed in range(repeats)])
  return float(np.sqrt(np.mean((values - phi[None]) ** 2)))

"""Shapley values of segments, estimated from random feature orders (Captum's
ShapleyValueSampling).

Castro, Gómez & Tejada, "Polynomial calculation of the Shapley value based on sampling",
Computers & Operations Research 36(5), 2009; Štrumbelj & Kononenko, "An Efficient
Explanation of Individual Classifications using Game Theory", JMLR 11, 2010.

For each of n orders of the F segments: start from the baseline, reveal the segments one
by one in that order, and credit each with the score gain of its step. A segment's value is
its mean gain over the orders: an unbiased estimate of its exact Shapley value (error
~ 1/√n). n·(F − 1) perturbed copies per image (the last step of an order is the image
itself), batched as in perturbation.py.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import perturbation


def random_orders(key: jax.Array, samples: int, num_features: int) -> jax.Array:
  """(samples, F) int32: one uniform random permutation of range(F) per row."""
  keys = jax.random.split(key, samples)
  return jax.vmap(lambda k: jax.random.permutation(k, num_features))(keys).astype(jnp.int32)


def shapley_value_sampling(model: nn.Module, variables, x: jax.Array, target: Any = None,
                           segments: Any = None, baseline: Any = 0.0, *, samples: int = 25,
                           key: jax.Array | None = None, permutations: Any = None,
                           num_segments: int | None = None,
                           chunk: int | None = 16) -> jax.Array:
  """Sampled Shapley values of the segments, spread over their pixels: (B[, K], H, W, C).

  As Captum's ShapleyValueSampling with feature_mask = segments (B, 1, H, W), the same
  baselines and n_samples = samples. The orders are shared by all images, as Captum's:
  `samples` permutations drawn from `key` (default key 0), or `permutations` (n, F) given
  (Captum draws with torch.randperm; give both sides the same orders to compare).
  chunk: steps per image per forward pass (B·chunk rows).
  """
  if segments is None:
    raise ValueError("shapley_value_sampling needs segments (B, H, W)")
  count = perturbation.segment_count(segments, num_segments)
  segments = perturbation.check_segments(segments, x)
  if permutations is None:
    orders = random_orders(jax.random.key(0) if key is None else key, samples, count)
  else:
    orders = jnp.asarray(permutations, jnp.int32)
    if orders.ndim != 2 or orders.shape[1] != count:
      raise ValueError(f"permutations must have shape (n, F={count}), got {orders.shape}")
  forward, resolved, clean = perturbation.setup(model, variables, x, target)
  base = perturbation.as_baseline(baseline, x)
  start = resolved.scores(forward(base))  # (B, K): every segment at the baseline
  ranks = jnp.argsort(orders, axis=1)  # ranks[p, f]: the step of order p that reveals f
  steps = count - 1  # the last step of every order reveals the whole image: `clean`

  def off(i):  # step t of order p: segments revealed after step t still show the baseline
    return ranks[i // steps][segments] > i % steps

  num = orders.shape[0]
  scores = (perturbation.perturbed_scores(forward, resolved, x, base, off, num * steps, chunk)
            if steps else jnp.zeros((0, *start.shape), start.dtype))
  scores = jnp.concatenate([jnp.broadcast_to(start, (num, 1, *start.shape)),
                            scores.reshape(num, steps, *start.shape),
                            jnp.broadcast_to(clean, (num, 1, *start.shape))], axis=1)
  gains = jnp.diff(scores, axis=1)  # (n, F, B, K): the gain of step t, of segment orders[p, t]
  gains = jnp.take_along_axis(gains, ranks[:, :, None, None], axis=1)  # by segment
  values = jnp.mean(gains, axis=0)  # (F, B, K)
  return perturbation.paint(jnp.moveaxis(values, 0, -1), segments, x, resolved)

"""Local linear surrogates on segments: KernelSHAP and LIME (Captum's KernelShap and Lime).

Both draw n binary interpretable samples z ∈ {0, 1}^F per image (1: the segment shows the
image, 0: the baseline), score the n perturbed copies (batched as in perturbation.py), and
fit score ≈ b₀ + Σ_f b_f z_f by weighted regression; b_f is segment f's attribution, spread
over its pixels: (B[, K], H, W, C), one fit per image and target (as Captum, which fits each
example separately). Differentiable in the parameters (the fits are closed-form solves and a
fixed number of coordinate-descent passes).

Draws: from `key` (default key 0), per image; or `interpretable_samples` (n, F) or
(B, n, F) given, e.g. the draws fed to Captum through its `perturb_func` hook.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import linear_fit, perturbation

KERNEL_SHAP_ENDPOINT_WEIGHT = 1e6  # Captum's stand-in for the infinite weight of z = 0, 1


def _samples(given: Any, draw, key, shape: tuple[int, int, int]) -> jax.Array:
  """(B, n, F) bool: the given (n, F) or (B, n, F) samples, or draw(key, shape)."""
  if given is None:
    return draw(jax.random.key(0) if key is None else key, shape)
  z = jnp.asarray(given)
  if z.ndim not in (2, 3) or z.shape[-1] != shape[2] or z.shape[:-2] not in ((), shape[:1]):
    raise ValueError(f"interpretable_samples must have shape (n, F) or (B, n, F) with "
                     f"B={shape[0]}, F={shape[2]}, got {z.shape}")
  return jnp.broadcast_to(z != 0, (shape[0], *z.shape[-2:]))


def _scores(model, variables, x, target, segments, baseline, z, chunk):
  """(resolved targets, (B, n, K) scores of the n copies of each image z describes)."""
  forward, resolved, _ = perturbation.setup(model, variables, x, target)
  flat = segments.reshape(x.shape[0], -1)

  def off(i):  # segments whose z is 0 show the baseline
    return ~jnp.take_along_axis(z[:, i], flat, axis=1).reshape(segments.shape)

  scores = perturbation.perturbed_scores(forward, resolved, x,
                                         perturbation.as_baseline(baseline, x), off,
                                         z.shape[1], chunk)
  return resolved, jnp.moveaxis(scores, 0, 1)


def _prepare(segments, num_segments, x, what: str):
  if segments is None:
    raise ValueError(f"{what} needs segments (B, H, W)")
  count = perturbation.segment_count(segments, num_segments)
  if count < 2:
    raise ValueError(f"{what} needs at least 2 segments, got {count}")
  return count, perturbation.check_segments(segments, x)


def kernel_shap_samples(key: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
  """(B, n, F) bool, drawn as Captum's KernelShap draws: z = 1 and z = 0 first, then samples
  of size |z| = k with P(k) ∝ (F − 1) / (k (F − k)), k = 1…F−1 (the Shapley kernel's
  weight of all subsets of size k), the k segments uniform given k."""
  batch, samples, count = shape
  sizes = jnp.arange(1, count)
  key_size, key_pick = jax.random.split(key)
  k = 1 + jax.random.categorical(key_size, jnp.log(1.0 / (sizes * (count - sizes))),
                                 shape=(batch, samples))
  ranks = jnp.argsort(jnp.argsort(jax.random.uniform(key_pick, shape), axis=-1), axis=-1)
  z = ranks < k[..., None]
  return z.at[:, 0].set(True).at[:, 1:2].set(False)


def kernel_shap(model: nn.Module, variables, x: jax.Array, target: Any = None,
                segments: Any = None, baseline: Any = 0.0, *, samples: int = 25,
                key: jax.Array | None = None, interpretable_samples: Any = None,
                num_segments: int | None = None, chunk: int | None = 16) -> jax.Array:
  """KernelSHAP: Shapley values of the segments from a weighted linear fit.

  Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017.
  arXiv:1705.07874. As Captum's KernelShap (n_samples = samples): samples drawn from the
  Shapley kernel (`kernel_shap_samples`), weight 1 each and 1e6 for z = 0 and z = 1 (the
  efficiency constraint, softly), fitted by least squares with an intercept (its
  SkLearnLinearRegression: `linear_fit.least_squares`).
  """
  count, segments = _prepare(segments, num_segments, x, "kernel_shap")
  z = _samples(interpretable_samples, kernel_shap_samples, key,
               (x.shape[0], samples, count))
  resolved, scores = _scores(model, variables, x, target, segments, baseline, z, chunk)
  selected = jnp.sum(z, axis=-1)
  weights = jnp.where((selected == 0) | (selected == count), KERNEL_SHAP_ENDPOINT_WEIGHT, 1.0)
  coef = jax.vmap(linear_fit.least_squares)(z.astype(scores.dtype), scores,
                                            weights.astype(scores.dtype))[0]
  return perturbation.paint(coef, segments, x, resolved)


def _segment_sums(values: jax.Array, segments: jax.Array, count: int) -> jax.Array:
  """(B, F): the sum of values (B, H, W) over each segment of each image."""
  batch = values.shape[0]
  ids = segments + count * jnp.arange(batch)[:, None, None]
  return jax.ops.segment_sum(values.reshape(-1), ids.reshape(-1),
                             num_segments=batch * count).reshape(batch, count)


def lime_similarity(x: jax.Array, base: jax.Array, segments: jax.Array, z: jax.Array,
                    kernel_width: float, distance: str) -> jax.Array:
  """(B, n) exp(−d² / (2 width²)) between each image and its perturbed copies (Captum's
  exponential kernel), from per-segment sums: d = 1 − cosine similarity of the flattened
  images (norms clamped at 1e-8, as torch's), or their Euclidean distance."""
  count = z.shape[-1]
  sums = lambda v: _segment_sums(jnp.sum(v, axis=-1), segments, count)  # noqa: E731
  on = z.astype(x.dtype)
  if distance == "cosine":
    xx, xb, bb = sums(x * x), sums(x * base), sums(base * base)
    dot = jnp.einsum("bnf,bf->bn", on, xx) + jnp.einsum("bnf,bf->bn", 1 - on, xb)
    norm_p = jnp.sqrt(jnp.einsum("bnf,bf->bn", on, xx) + jnp.einsum("bnf,bf->bn", 1 - on, bb))
    norm_x = jnp.sqrt(jnp.sum(xx, axis=1))[:, None]
    gap = 1 - dot / (jnp.maximum(norm_x, 1e-8) * jnp.maximum(norm_p, 1e-8))
  elif distance == "euclidean":
    gap = jnp.sqrt(jnp.einsum("bnf,bf->bn", 1 - on, sums((x - base) ** 2)))
  else:
    raise ValueError(f"distance must be 'cosine' or 'euclidean', got {distance!r}")
  return jnp.exp(-gap ** 2 / (2 * kernel_width ** 2))


def lime(model: nn.Module, variables, x: jax.Array, target: Any = None,
         segments: Any = None, baseline: Any = 0.0, *, samples: int = 25,
         key: jax.Array | None = None, interpretable_samples: Any = None,
         kernel_width: float = 1.0, distance: str = "cosine", alpha: float = 0.01,
         sweeps: int = 200, num_segments: int | None = None,
         chunk: int | None = 16) -> jax.Array:
  """LIME: the coefficients of a sparse linear model fitted near each image.

  Ribeiro, Singh & Guestrin, "'Why Should I Trust You?': Explaining the Predictions of Any
  Classifier", KDD 2016. arXiv:1602.04938. As Captum's Lime with its defaults: z uniform on
  {0, 1}^F (each segment on with probability ½), weights exp(−d² / (2 kernel_width²)) with
  d the cosine distance of the flattened images (`lime_similarity`), and its Lasso(alpha)
  fitted with those weights (`linear_fit.lasso`, `sweeps` coordinate-descent passes).
  alpha=0: weighted least squares (Captum's Lime with SkLearnLinearRegression). Captum's
  Lasso is sklearn's, which stops at a duality gap of 1e-4 · ||y||²; ours is the optimum.
  """
  count, segments = _prepare(segments, num_segments, x, "lime")
  z = _samples(interpretable_samples, lambda k, s: jax.random.bernoulli(k, 0.5, s), key,
               (x.shape[0], samples, count))
  resolved, scores = _scores(model, variables, x, target, segments, baseline, z, chunk)
  base = perturbation.as_baseline(baseline, x)
  weights = lime_similarity(x, base, segments, z, kernel_width, distance).astype(scores.dtype)
  features = z.astype(scores.dtype)
  if alpha == 0:
    coef = jax.vmap(linear_fit.least_squares)(features, scores, weights)[0]
  else:
    coef = jax.vmap(lambda f, s, w: linear_fit.lasso(f, s, w, alpha, sweeps))(
        features, scores, weights)[0]
  return perturbation.paint(coef, segments, x, resolved)

"""GradientShap: expected gradients × (input − baseline) at random points between them.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
arXiv:1705.07874; the estimator of Erion et al., "Improving performance of deep learning
models with axiomatic attribution priors and expected gradients", Nature Machine Intelligence
2021, arXiv:1906.10670. As Captum's GradientShap (a NoiseTunnel over InputBaselineXGradient):
for each image, `samples` draws of a baseline b from the distribution, Gaussian noise n on the
input and a ∈ U(0, 1); with x̃ = x + n,
  attribution = mean over draws of (x̃ − b) · ∇S(a·x̃ + (1 − a)·b).
Its expectation sums to S(x) − E S(b) (for stdev 0). Plain gradients (no rules), so
differentiable in the parameters.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import gradients


def _draws(x: jax.Array, n_baselines: int, samples: int, stdev: float, key, draws, alphas,
           noise) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(baseline indices (B, S), a (B, S), noise (B, S, H, W, C)): given, or drawn from key."""
  given = [a for a in (draws, alphas, noise) if a is not None]
  if given:
    samples = given[0].shape[1]
  for name, a in (("draws", draws), ("alphas", alphas), ("noise", noise)):
    if a is not None and tuple(a.shape[:2]) != (x.shape[0], samples):
      raise ValueError(f"{name} must have shape (B, samples, ...) = ({x.shape[0]}, {samples}, "
                       f"...), got {a.shape}")
  keys = jax.random.split(jax.random.key(0) if key is None else key, 3)
  if draws is None:
    draws = jax.random.randint(keys[0], (x.shape[0], samples), 0, n_baselines)
  if alphas is None:
    alphas = jax.random.uniform(keys[1], (x.shape[0], samples), x.dtype)
  if noise is None:
    noise = stdev * jax.random.normal(keys[2], (x.shape[0], samples, *x.shape[1:]), x.dtype)
  return jnp.asarray(draws), jnp.asarray(alphas, x.dtype), jnp.asarray(noise, x.dtype)


def gradient_shap(model: nn.Module, variables, x: jax.Array, target: Any = None,
                  baselines: Any = None, *, samples: int = 5, stdev: float = 0.0,
                  key: jax.Array | None = None, draws: Any = None, alphas: Any = None,
                  noise: Any = None, chunk: int | None = 32) -> jax.Array:
  """GradientShap: (B, H, W, C), or (B, K, H, W, C) for several targets.

  baselines: the distribution (N, H, W, C) (None: one black image). samples draws per image
  (Captum's n_samples), noise std `stdev` (Captum's stdevs, absolute). To reproduce another
  library's draws pass them: draws (B, samples) baseline indices, alphas (B, samples) in
  [0, 1], noise (B, samples, H, W, C); else they come from `key`. Targets are bound on the
  clean images; `chunk` rows per gradient pass.
  """
  base = jnp.zeros((1, *x.shape[1:]), x.dtype) if baselines is None else jnp.asarray(
      baselines, x.dtype)
  if base.ndim != x.ndim or base.shape[1:] != x.shape[1:]:
    raise ValueError(f"baselines must be a distribution (N, {', '.join(map(str, x.shape[1:]))})"
                     f" for x {x.shape}, got {base.shape}")
  forward, resolved = gradients.resolve_on(model, variables, x, target)
  draws, alphas, noise = _draws(x, base.shape[0], samples, stdev, key, draws, alphas, noise)
  samples = draws.shape[1]
  noisy = x[:, None] + noise  # (B, S, H, W, C)
  chosen = base[draws]
  a = alphas.reshape(*alphas.shape, *([1] * (x.ndim - 1)))
  points = (a * noisy + (1 - a) * chosen).reshape(-1, *x.shape[1:])  # image-major rows
  grads = gradients.rows_gradients(forward, points, resolved.repeat(samples), chunk)
  # row by row, then the mean over draws: the product broadcast over (B, S, K, ...) inside the
  # mean came out wrong from XLA-CPU (jaxlib 0.10.2) under jit of vmap over variables
  products = grads * (noisy - chosen).reshape(points.shape)[:, None]  # (B·S, K, H, W, C)
  attributions = jnp.mean(products.reshape(x.shape[0], samples, *products.shape[1:]), axis=1)
  return attributions if resolved.multi else attributions[:, 0]

"""Infidelity and max-sensitivity of explanations, as Captum 0.9's `captum.metrics`.

Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS 2019 (arXiv:1901.09392).

  infidelity       E_I[(Σ attributions · I − (f(x) − f(x − I)))²] over perturbations I:
                   how well the attributions predict the score change of a perturbation.
  sensitivity_max  max over ‖δ‖∞ ≤ r of ‖e(x + δ) − e(x)‖ / ‖e(x)‖ (Frobenius norms),
                   estimated on uniform draws δ: how much the explanation moves when the
                   input barely does.

Draws are image-major, (B, samples, H, W, C), the order of Captum's `repeat_interleave`, so
a Captum `perturb_func` can return ours row for row.
"""
import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import chunks, maps, targets


def gaussian_perturbation(scale: float = 0.003) -> Callable:
  """perturb(key, x) -> (I, x − I), I ~ N(0, scale²): the perturbation of Captum's infidelity
  docs and of Yeh et al.'s 'noisy baseline' (for local attributions such as gradients)."""
  def perturb(key, x):
    noise = scale * jax.random.normal(key, x.shape, x.dtype)
    return noise, x - noise
  return perturb


def _draw_perturbations(perturb, x: jax.Array, samples: int, key: jax.Array | None):
  """(I, x̃), both (B, S, H, W, C), from a callable or an explicit array of I (x̃ = x − I)."""
  if callable(perturb):
    keys = jax.random.split(jax.random.key(0) if key is None else key, samples)
    return jax.vmap(lambda k: perturb(k, x), out_axes=1)(keys)
  perturb = jnp.asarray(perturb, x.dtype)
  if perturb.shape[:1] + perturb.shape[2:] != x.shape:
    raise ValueError(f"explicit perturbations must have shape (B, samples, H, W, C) for x "
                     f"{x.shape}, got {perturb.shape}")
  return perturb, x[:, None] - perturb


def infidelity(model: nn.Module, variables, x: jax.Array, attributions: jax.Array,
               target: Any = None, *, perturb: Callable | jax.Array | None = None,
               samples: int = 10, key: jax.Array | None = None, normalize: bool = False,
               chunk: int | None = None) -> jax.Array:
  """Infidelity of `attributions` (B, H, W, C), or (B, K, H, W, C) for several targets.

  perturb: a function (key, x) -> (I, perturbed x), called once per sample with its own key
  (None: `gaussian_perturbation()`), or the explicit perturbations I (B, samples, H, W, C)
  with perturbed x = x − I (Captum's convention). normalize: Captum's `normalize=True`, the
  attributions scaled by the β that minimizes the error first. Targets: every targets.py
  form, classes bound on x; the score is the raw output. `chunk` rows of perturbed images
  per forward (None: all B·samples at once). Returns (B,) or (B, K). Differentiable in the
  parameters.
  """
  perturbations, perturbed = _draw_perturbations(
      gaussian_perturbation() if perturb is None else perturb, x, samples, key)
  samples = perturbations.shape[1]
  forward, target = targets.scores_fn(model, variables, target)
  outputs = forward(x)
  resolved = targets.resolve(target, outputs)
  rows = resolved.repeat(samples)

  def scores(part):
    z, classes = part
    part_resolved = rows if classes is None else dataclasses.replace(rows, classes=classes)
    return maps.at_least_float32(part_resolved.scores(forward(z)))

  after = chunks.unrolled_chunks(scores, (perturbed.reshape(-1, *x.shape[1:]), rows.classes),
                                 chunk).reshape(x.shape[0], samples, -1)  # (B, S, K)
  differences = maps.at_least_float32(resolved.scores(outputs))[:, None] - after
  attributions = attributions if resolved.multi else attributions[:, None]
  if attributions.shape != (x.shape[0], resolved.num, *x.shape[1:]):
    raise ValueError(f"attributions must have shape {(x.shape[0], *x.shape[1:])} (one target) "
                     f"or (B, K, H, W, C) (K targets) for x {x.shape}, got {attributions.shape}")
  explained = jnp.einsum("bkf,bsf->bsk", maps.at_least_float32(attributions).reshape(
      x.shape[0], resolved.num, -1), maps.at_least_float32(perturbations).reshape(
          x.shape[0], samples, -1))
  if normalize:
    num, den = jnp.sum(explained * differences, 1), jnp.sum(explained**2, 1)
    beta = num / jnp.where(den == 0, 1, den)  # Captum's safe_div(default_denom=1)
    value = (beta**2 * den - 2 * beta * num + jnp.sum(differences**2, 1)) / samples
  else:
    value = jnp.mean((explained - differences)**2, axis=1)
  return value if resolved.multi else value[:, 0]


def _repeat_target(target: Any, n: int) -> Any:
  """The target of each image for a batch holding n consecutive copies of every image."""
  if isinstance(target, targets.Neuron) and jnp.ndim(target.channel):
    return dataclasses.replace(target, channel=jnp.repeat(jnp.asarray(target.channel), n, 0))
  if hasattr(target, "ndim") and not isinstance(target, str) and target.ndim:
    return jnp.repeat(jnp.asarray(target), n, axis=0)
  return target  # None, ints, lists, top_k, 'all', callables: per row already


def _flat(explanation) -> jax.Array:
  """An explanation pytree -> (N, features), its leaves flattened per row and joined."""
  leaves = [maps.at_least_float32(a) for a in jax.tree.leaves(explanation)]
  return jnp.concatenate([a.reshape(a.shape[0], -1) for a in leaves], axis=1)


def sensitivity_max(model: nn.Module, variables, x: jax.Array, explainer: Callable,
                    target: Any = None, *, radius: float = 0.02, samples: int = 10,
                    key: jax.Array | None = None, noise: jax.Array | None = None,
                    chunk: int | None = None, **explainer_kwargs) -> jax.Array:
  """Max-sensitivity (B,) of `explainer`, an explainer of this package called as
  explainer(model, variables, z, target=target, **explainer_kwargs).

  Perturbations: uniform in [−radius, radius] per pixel from `key` (None: key 0; Captum's
  default perturb_func), or the explicit noise (B, samples, H, W, C). Each perturbed image is
  explained with the same target argument as x (None: its own top-1 class, as Captum).
  Ratios use Frobenius norms of the whole explanation; a zero explanation of x divides by 1
  (Captum). `chunk`: samples explained per call (None: all B·samples rows in one call).
  Differentiable in the parameters where the explainer is (the max picks one sample).
  """
  if noise is None:
    noise = jax.random.uniform(jax.random.key(0) if key is None else key,
                               (x.shape[0], samples, *x.shape[1:]), x.dtype, -radius, radius)
  elif noise.shape[:1] + noise.shape[2:] != x.shape:
    raise ValueError(f"noise must have shape (B, samples, H, W, C) for x {x.shape}, "
                     f"got {noise.shape}")
  explain = lambda z, n: explainer(model, variables, z, target=_repeat_target(target, n),  # noqa
                                   **explainer_kwargs)
  reference = _flat(explain(x, 1))  # (B, F)

  def moved(draws):  # (B, s, H, W, C) -> (B, s) relative changes
    count = draws.shape[1]
    z = (x[:, None] + draws).reshape(-1, *x.shape[1:])
    change = _flat(explain(z, count)).reshape(x.shape[0], count, -1) - reference[:, None]
    return jnp.linalg.norm(change, axis=-1)

  ratios = chunks.unrolled_chunks(lambda d: moved(jnp.moveaxis(d, 0, 1)).T,
                                  jnp.moveaxis(noise, 1, 0), chunk)  # (S, B)
  norm = jnp.linalg.norm(reference, axis=-1)
  return jnp.max(ratios, axis=0) / jnp.where(norm == 0, 1, norm)

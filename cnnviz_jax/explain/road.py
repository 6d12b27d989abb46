"""Faithfulness by perturbation, as pytorch-grad-cam 1.5.7's metrics: ROAD and the confidence
change of an image multiplied by its map.

ROAD: Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods", ICML 2022 (arXiv:2202.00449). The pixels whose map value
lies at or above the map's p-th percentile ("most relevant first", MoRF) or below it ("least
relevant first", LeRF: the percentile of 1 − map) are replaced by a noisy linear imputation
of their neighbors (imputation.py), and the target's score change is recorded. A faithful
map makes the score drop when its top pixels go (MoRF) and hold when its bottom pixels go
(LeRF). pytorch-grad-cam's ROADMostRelevantFirst(p), ROADLeastRelevantFirst(p), their
*Average over percentiles and ROADCombined = (LeRF − MoRF) / 2 are `order=` 'most', 'least'
and 'combined' here; `percentiles` is one value or several (averaged).

Confidence change: CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence:
the score of x · map minus the score of x (the map in [0, 1] at the input's size).
"""
import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import imputation, maps, targets

ORDERS = ("most", "least", "combined")


def percentile(values: jax.Array, p: float) -> jax.Array:
  """numpy.percentile(values, p) over the last axis (method 'linear'), with numpy's own
  rounding: its index arithmetic in float64 and its lerp in the values' dtype, so that a
  threshold equal to tied values is their value exactly (`map < threshold` then agrees)."""
  n = values.shape[-1]
  q = p / 100
  index = n * q + (1 + q * (1 - 1 - 1)) - 1  # numpy's _compute_virtual_index, alpha = beta = 1
  low = min(max(int(np.floor(index)), 0), n - 1)
  gamma = float(index - np.floor(index)) if 0 <= index < n - 1 else 0.0
  ordered = jnp.sort(values, axis=-1)
  a, b = ordered[..., low], ordered[..., min(low + 1, n - 1)]
  if gamma >= 0.5:
    return b - (b - a) * (1 - gamma)
  return a + (b - a) * gamma


def removed_pixels(saliency: jax.Array, p: float, order: str) -> jax.Array:
  """(B, H, W) bool: the pixels ROAD removes at percentile p, 'most' or 'least' first."""
  values = saliency if order == "most" else 1 - saliency
  flat = values.reshape(values.shape[0], -1)
  threshold = percentile(flat, p)[:, None, None]
  return ~(values < threshold)  # the peer keeps values < threshold


class Road(NamedTuple):
  score: jax.Array  # (B,) or (B, K): the average change, or (LeRF − MoRF) / 2 for 'combined'
  most: jax.Array | None  # (B, P) or (B, K, P): score change per percentile, MoRF
  least: jax.Array | None  # (B, P) or (B, K, P): LeRF


def _input_size_map(saliency: jax.Array, x: jax.Array) -> jax.Array:
  if saliency.ndim != 3 or saliency.shape[0] != x.shape[0]:
    raise ValueError(f"saliency must be maps (B, h, w) for x {x.shape}, got {saliency.shape}; "
                     "reduce input attributions first (e.g. maps.attribution_map)")
  saliency = maps.at_least_float32(saliency)
  if saliency.shape[1:] != x.shape[1:3]:  # CAMs at layer resolution: as pytorch-grad-cam's
    saliency = maps.upsample(saliency, x.shape[1:3])
  return saliency


def _scores(forward, resolved: targets.Resolved, z: jax.Array) -> jax.Array:
  return maps.at_least_float32(resolved.scores(forward(z)))  # (B, K)


def _imputed_scores(forward, resolved: targets.Resolved, x: jax.Array, removed: jax.Array,
                    noise: jax.Array, chunk: int | None, **solve) -> jax.Array:
  """(S, B, K) scores after imputing x where removed (S, B, H, W), S steps."""
  steps = removed.shape[0]
  if chunk is None:  # one batch of rows (step, image), step-major
    tiled = resolved if resolved.classes is None else dataclasses.replace(
        resolved, classes=jnp.tile(resolved.classes, (steps, 1)))
    z = imputation.impute(jnp.tile(x, (steps, 1, 1, 1)), removed.reshape(-1, *x.shape[1:3]),
                          noise.reshape(-1, *x.shape[1:]), **solve)
    return _scores(forward, tiled, z).reshape(steps, x.shape[0], -1)
  return jax.lax.map(  # `chunk` steps of B images at a time
      lambda parts: _scores(forward, resolved, imputation.impute(x, *parts, **solve)),
      (removed, noise), batch_size=chunk)


def road(model: nn.Module, variables, x: jax.Array, saliency: jax.Array, target: Any = None,
         percentiles: float | Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
         order: str = "combined", *, noise_scale: float = 0.01, key: jax.Array | None = None,
         noise: jax.Array | None = None, tol: float = 1e-6, max_iterations: int = 100,
         chunk: int | None = 1) -> Road:
  """ROAD scores of maps `saliency` (B, h, w) for images x (B, H, W, C); see the module doc.

  Maps below the input's size are upsampled bilinearly (pytorch-grad-cam hands ROAD its CAMs
  resized to the input; the percentile masks do not depend on the maps' scale). target:
  every targets.py form, scored on the model's raw outputs as pytorch-grad-cam's
  ClassifierOutputTarget (a callable target gives e.g. softmax probabilities); classes are
  bound on x. Imputation noise: noise_scale × N(0, 1) draws from `key` (None: key 0), or
  the explicit standard normal draws `noise` (O, P, B, H, W, C), O the orders ('most' before
  'least'), P the percentiles. The imputation solves to relative residual `tol`
  (imputation.py). `chunk` (order, percentile) pairs of B images each are imputed and
  scored at a time (None: all in one batch). Differentiable in the parameters (the
  imputation depends on x and the maps only).
  """
  if order not in ORDERS:
    raise ValueError(f"unknown ROAD order {order!r}; valid: {', '.join(ORDERS)}")
  orders = ("most", "least") if order == "combined" else (order,)
  percentiles = tuple(np.atleast_1d(np.asarray(percentiles, float)).tolist())
  saliency = _input_size_map(saliency, x)
  forward, target = targets.scores_fn(model, variables, target)
  outputs = forward(x)
  resolved = targets.resolve(target, outputs)
  removed = jnp.stack([removed_pixels(saliency, p, o) for o in orders for p in percentiles])
  shape = (len(orders), len(percentiles), *x.shape)
  if noise is None:
    noise = jax.random.normal(jax.random.key(0) if key is None else key, shape, x.dtype)
  elif noise.shape != shape:
    raise ValueError(f"noise must have shape (orders, percentiles, B, H, W, C) = {shape}, "
                     f"got {noise.shape}")
  scores = _imputed_scores(forward, resolved, x, removed, noise.reshape(-1, *x.shape), chunk,
                           noise_scale=noise_scale, tol=tol, max_iterations=max_iterations)
  before = maps.at_least_float32(resolved.scores(outputs))
  change = jnp.moveaxis(scores.reshape(*shape[:3], -1) - before, (0, 1), (-2, -1))
  change = change if resolved.multi else change[:, 0]  # (B, [K,] O, P)
  per_order = dict(zip(orders, jnp.moveaxis(change, -2, 0)))
  means = {o: jnp.mean(c, axis=-1) for o, c in per_order.items()}
  score = (means["least"] - means["most"]) / 2 if order == "combined" else means[order]
  return Road(score, per_order.get("most"), per_order.get("least"))


class ConfidenceChange(NamedTuple):
  change: jax.Array  # score(x · map) − score(x): CamMultImageConfidenceChange
  drop: jax.Array  # max(−change, 0): DropInConfidence
  increase: jax.Array  # 1.0 where change > 0: IncreaseInConfidence (not differentiable)


def confidence_change(model: nn.Module, variables, x: jax.Array, saliency: jax.Array,
                      target: Any = None) -> ConfidenceChange:
  """How the target's score moves when x (B, H, W, C) is multiplied by its map (B, h, w).

  pytorch-grad-cam's CamMultImageConfidenceChange and its drop / increase summaries (used in
  its tutorials with maps scaled to [0, 1]; the map is used as given, upsampled bilinearly
  if smaller than x). Scores: the raw outputs for class targets (every targets.py form),
  classes bound on x; (B,) per image, (B, K) for several targets. Differentiable in the
  parameters, except `increase`, a step function.
  """
  saliency = _input_size_map(saliency, x)
  forward, target = targets.scores_fn(model, variables, target)
  outputs = forward(x)
  resolved = targets.resolve(target, outputs)
  before = maps.at_least_float32(resolved.scores(outputs))
  change = _scores(forward, resolved, x * saliency[..., None].astype(x.dtype)) - before
  change = change if resolved.multi else change[:, 0]
  return ConfidenceChange(change, jnp.maximum(-change, 0), (change > 0).astype(change.dtype))

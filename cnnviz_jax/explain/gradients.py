"""Input attributions: gradient, gradient × input, SmoothGrad, Integrated Gradients.

All return (B, H, W, C) for one target per image, (B, K, H, W, C) for several
(targets.py), signed (no absolute value: take it for display if wanted; Captum's
Saliency takes it by default). SmoothGrad samples and IG steps are batched into the
batch axis and processed `chunk` rows at a time in an unrolled loop: a gradient inside
`lax.map` runs 2-3x slower on XLA-CPU (see chunks.py).
"""
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import chunks, maps, targets

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
              "gausslegendre")


def _forward(model: nn.Module, variables):
  return lambda z: model.apply(variables, z, train=False)


def _resolve_on(model: nn.Module, variables, x: jax.Array, target: Any) -> targets.Resolved:
  """Targets for the clean images; a forward pass only when the values matter."""
  if target is None or isinstance(target, targets.TopK):
    outputs = _forward(model, variables)(x)
  else:  # shapes suffice
    shape = jax.eval_shape(_forward(model, variables), jax.ShapeDtypeStruct(x.shape, x.dtype))
    outputs = jnp.zeros(shape.shape, shape.dtype)
  return targets.resolve(target, outputs)


def _rows_gradients(model: nn.Module, variables, xs: jax.Array, resolved: targets.Resolved,
                    chunk: int | None) -> jax.Array:
  """(N, K, H, W, C) gradients of rows xs whose targets are `resolved` (N rows)."""
  def grads(rows):
    z, classes = rows
    part = resolved if classes is None else dataclasses.replace(resolved, classes=classes)
    outputs, pull = jax.vjp(_forward(model, variables), z)
    return targets.pull_targets(pull, outputs, part)

  return chunks.unrolled_chunks(grads, (xs, resolved.classes), chunk)


def gradient(model: nn.Module, variables, x: jax.Array, target: Any = None) -> jax.Array:
  """d score / d input ("vanilla gradient", saliency).

  Simonyan et al., "Deep Inside Convolutional Networks: Visualizing Image
  Classification Models and Saliency Maps", ICLR workshop 2014. arXiv:1312.6034.
  """
  outputs, pull = jax.vjp(_forward(model, variables), x)
  resolved = targets.resolve(target, outputs)
  grads = targets.pull_targets(pull, outputs, resolved)
  return grads if resolved.multi else grads[:, 0]


def gradient_x_input(model: nn.Module, variables, x: jax.Array, target: Any = None
                     ) -> jax.Array:
  """Gradient × input. Shrikumar et al., "Not Just a Black Box: Learning Important
  Features Through Propagating Activation Differences", 2016. arXiv:1605.01713."""
  grads = gradient(model, variables, x, target)
  return grads * (x if grads.ndim == x.ndim else x[:, None])


def smoothgrad(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
               samples: int = 16, noise_level: float = 0.15, stdev: float | None = None,
               key: jax.Array | None = None, noise: jax.Array | None = None,
               chunk: int | None = 32) -> jax.Array:
  """Mean gradient over Gaussian-noised copies of each image.

  Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017. arXiv:1706.03825.
  Noise std: `stdev` if given, else noise_level × (max − min) of each image (the paper's
  σ/(x_max − x_min)). noise: an explicit (B, samples, H, W, C) array overrides both (to
  reproduce another library's draw). Targets are resolved on the clean images.
  """
  resolved = _resolve_on(model, variables, x, target)
  if noise is None:
    key = jax.random.key(0) if key is None else key
    sigma = stdev if stdev is not None else noise_level * (
        jnp.max(x, axis=(1, 2, 3)) - jnp.min(x, axis=(1, 2, 3)))[:, None, None, None, None]
    noise = sigma * jax.random.normal(key, (x.shape[0], samples, *x.shape[1:]), x.dtype)
  elif noise.shape[:1] + noise.shape[2:] != x.shape:
    raise ValueError(f"noise must have shape (B, samples, H, W, C) for x {x.shape}, "
                     f"got {noise.shape}")
  samples = noise.shape[1]
  xs = (x[:, None] + noise).reshape(-1, *x.shape[1:])  # (B·S, H, W, C), image-major
  grads = _rows_gradients(model, variables, xs, resolved.repeat(samples), chunk)
  grads = jnp.mean(grads.reshape(x.shape[0], samples, *grads.shape[1:]), axis=1)
  return grads if resolved.multi else grads[:, 0]


def ig_rule(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
  """(alphas, weights) of the path integral's quadrature rule on [0, 1].

  As Captum's rules, except the trapezoid: Captum puts its nodes at linspace(0, 1, n)
  but weighs them 1/n (ends 1/(2n)), so its weights sum to (n−1)/n and its attributions
  come out scaled by (n−1)/n (completeness off by 1/n). Ours weigh them 1/(n−1).
  """
  if method == "gausslegendre":
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return 0.5 * (nodes + 1), 0.5 * weights
  if method not in IG_METHODS:
    raise ValueError(f"unknown integration method {method!r}; valid: {', '.join(IG_METHODS)}")
  if steps < 2:
    raise ValueError(f"a Riemann rule needs steps >= 2, got {steps}")
  weights = np.full(steps, 1 / steps)
  if method == "riemann_trapezoid":  # nodes 1/(steps-1) apart; ends count half
    weights = np.full(steps, 1 / (steps - 1))
    weights[[0, -1]] /= 2
  alphas = {"riemann_left": np.linspace(0, 1 - 1 / steps, steps),
            "riemann_right": np.linspace(1 / steps, 1, steps),
            "riemann_middle": np.linspace(1 / (2 * steps), 1 - 1 / (2 * steps), steps),
            "riemann_trapezoid": np.linspace(0, 1, steps)}[method]
  return alphas, weights


def _baseline(x: jax.Array, baseline: Any, blur_sigma: float) -> jax.Array:
  if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
    return jnp.zeros_like(x)
  if isinstance(baseline, str) and baseline == "blur":
    return maps.gaussian_blur(x, blur_sigma)
  if isinstance(baseline, str):
    raise ValueError(f"unknown baseline {baseline!r}; valid: None/'zeros', 'blur', an array")
  return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


def integrated_gradients(model: nn.Module, variables, x: jax.Array, target: Any = None,
                         baseline: Any = None, steps: int = 32, *,
                         method: str = "riemann_trapezoid", blur_sigma: float = 5.0,
                         chunk: int | None = 32) -> jax.Array:
  """(x − x') · ∫_0^1 ∂S(x' + a (x − x')) / ∂x da, by a quadrature rule.

  Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017.
  arXiv:1703.01365. baseline x': None/'zeros', 'blur' (Gaussian, blur_sigma pixels) or an
  array broadcastable to x. method: Captum's rules (see `ig_rule`); the default trapezoid
  rule has nodes linspace(0, 1, steps), both ends at half weight (the paper's right
  Riemann sum is 'riemann_right'). Completeness: the sum over pixels ≈ S(x) − S(x').
  """
  alphas, weights = ig_rule(method, steps)
  resolved = _resolve_on(model, variables, x, target)
  base = _baseline(x, baseline, blur_sigma)
  delta = x - base
  a = jnp.asarray(alphas, x.dtype)[None, :, None, None, None]
  xs = (base[:, None] + a * delta[:, None]).reshape(-1, *x.shape[1:])  # (B·steps, H, W, C)
  grads = _rows_gradients(model, variables, xs, resolved.repeat(len(alphas)), chunk)
  grads = grads.reshape(x.shape[0], len(alphas), *grads.shape[1:])
  attributions = jnp.einsum("bs...,s->b...", grads, jnp.asarray(weights, x.dtype))
  attributions = attributions * delta[:, None]  # (B, K, H, W, C)
  return attributions if resolved.multi else attributions[:, 0]

"""Input attributions: gradient, gradient × input, SmoothGrad, Integrated Gradients.

All return (B, H, W, C) for one target per image, (B, K, H, W, C) for several
(targets.py), signed (no absolute value: take it for display if wanted; Captum's
Saliency takes it by default). A neuron target (`targets.neuron(layer, channel)`) explains
an inner unit instead of a class: Captum's NeuronGradient, NeuronIntegratedGradients and
NoiseTunnel over them. SmoothGrad samples and IG steps are batched into the
batch axis and processed `chunk` rows at a time in an unrolled loop: a gradient inside
`lax.map` runs 2-3x slower on XLA-CPU (see chunks.py).
"""
import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnnviz_jax.explain import chunks, maps, targets

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
              "gausslegendre")


def resolve_on(model: nn.Module, variables, x: jax.Array, target: Any
               ) -> tuple[Callable[[jax.Array], jax.Array], targets.Resolved]:
  """(forward z -> (B, N) scores, the targets bound to the clean images x).

  The forward is `targets.scores_fn`'s (a neuron target scores the layer's channels); a
  forward pass runs only when the values matter (top-1, top_k), else shapes suffice.
  """
  forward, target = targets.scores_fn(model, variables, target)
  if target is None or isinstance(target, targets.TopK):
    outputs = forward(x)
  else:
    shape = jax.eval_shape(forward, jax.ShapeDtypeStruct(x.shape, x.dtype))
    outputs = jnp.zeros(shape.shape, shape.dtype)
  return forward, targets.resolve(target, outputs)


def rows_gradients(forward: Callable[[jax.Array], jax.Array], xs: jax.Array,
                   resolved: targets.Resolved, chunk: int | None) -> jax.Array:
  """(N, K, H, W, C) gradients of rows xs whose targets are `resolved` (N rows)."""
  def grads(rows):
    z, classes = rows
    part = resolved if classes is None else dataclasses.replace(resolved, classes=classes)
    outputs, pull = jax.vjp(forward, z)
    return targets.pull_targets(pull, outputs, part)

  return chunks.unrolled_chunks(grads, (xs, resolved.classes), chunk)


def gradient(model: nn.Module, variables, x: jax.Array, target: Any = None) -> jax.Array:
  """d score / d input ("vanilla gradient", saliency).

  Simonyan et al., "Deep Inside Convolutional Networks: Visualizing Image
  Classification Models and Saliency Maps", ICLR workshop 2014. arXiv:1312.6034.
  """
  forward, target = targets.scores_fn(model, variables, target)
  outputs, pull = jax.vjp(forward, x)
  resolved = targets.resolve(target, outputs)
  grads = targets.pull_targets(pull, outputs, resolved)
  return grads if resolved.multi else grads[:, 0]


def gradient_x_input(model: nn.Module, variables, x: jax.Array, target: Any = None
                     ) -> jax.Array:
  """Gradient × input. Shrikumar et al., "Not Just a Black Box: Learning Important
  Features Through Propagating Activation Differences", 2016. arXiv:1605.01713."""
  grads = gradient(model, variables, x, target)
  return grads * (x if grads.ndim == x.ndim else x[:, None])


SMOOTHGRAD_KINDS = ("mean", "sq", "var")


def smoothgrad(model: nn.Module, variables, x: jax.Array, target: Any = None, *,
               samples: int = 16, noise_level: float = 0.15, stdev: float | None = None,
               key: jax.Array | None = None, noise: jax.Array | None = None,
               kind: str = "mean", chunk: int | None = 32) -> jax.Array:
  """The gradient over Gaussian-noised copies of each image: its mean, mean square or variance.

  kind 'mean': SmoothGrad, Smilkov et al., "SmoothGrad: removing noise by adding noise",
  2017, arXiv:1706.03825. 'sq': the mean of squared gradients (SmoothGrad², Hooker et al.,
  "A Benchmark for Interpretability Methods in Deep Neural Networks", NeurIPS 2019,
  arXiv:1806.10758). 'var': their variance E[g²] − E[g]² (VarGrad, Adebayo et al., "Local
  Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values", ICLR
  workshop 2018, arXiv:1810.03307). Captum's NoiseTunnel nt_type 'smoothgrad',
  'smoothgrad_sq', 'vargrad', with the same formulas (VarGrad without Bessel's correction).
  Noise std: `stdev` if given, else noise_level × (max − min) of each image (the paper's
  σ/(x_max − x_min)). noise: an explicit (B, samples, H, W, C) array overrides both (to
  reproduce another library's draw). Targets are resolved on the clean images.
  """
  if kind not in SMOOTHGRAD_KINDS:
    raise ValueError(f"unknown smoothgrad kind {kind!r}; valid: {', '.join(SMOOTHGRAD_KINDS)}")
  forward, resolved = resolve_on(model, variables, x, target)
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
  grads = rows_gradients(forward, xs, resolved.repeat(samples), chunk)
  grads = grads.reshape(x.shape[0], samples, *grads.shape[1:])
  mean = jnp.mean(grads, axis=1)
  if kind == "mean":
    out = mean
  else:
    out = jnp.mean(jnp.square(grads), axis=1)
    out = out if kind == "sq" else out - jnp.square(mean)
  return out if resolved.multi else out[:, 0]


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


def baseline_like(x: jax.Array, baseline: Any, blur_sigma: float = 5.0) -> jax.Array:
  """The path's start x' for x: None/'zeros', 'blur' (Gaussian, blur_sigma px), an array."""
  if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
    return jnp.zeros_like(x)
  if isinstance(baseline, str) and baseline == "blur":
    return maps.gaussian_blur(x, blur_sigma)
  if isinstance(baseline, str):
    raise ValueError(f"unknown baseline {baseline!r}; valid: None/'zeros', 'blur', an array")
  return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


def straight_path(start: jax.Array, end: jax.Array, alphas) -> jax.Array:
  """start + a (end − start) for each a of alphas: (B·S, ...), image-major (row b·S + s)."""
  a = jnp.asarray(alphas, end.dtype).reshape(1, -1, *([1] * (end.ndim - 1)))
  return (start[:, None] + a * (end - start)[:, None]).reshape(-1, *end.shape[1:])


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
  forward, resolved = resolve_on(model, variables, x, target)
  base = baseline_like(x, baseline, blur_sigma)
  delta = x - base
  xs = straight_path(base, x, alphas)
  grads = rows_gradients(forward, xs, resolved.repeat(len(alphas)), chunk)
  grads = grads.reshape(x.shape[0], len(alphas), *grads.shape[1:])
  attributions = jnp.einsum("bs...,s->b...", grads, jnp.asarray(weights, x.dtype))
  attributions = attributions * delta[:, None]  # (B, K, H, W, C)
  return attributions if resolved.multi else attributions[:, 0]

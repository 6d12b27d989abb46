"""DeepLIFT's rescale rules as custom VJPs, for the activation and max-pool swap.

The model runs on one batch [inputs; baselines] (2B rows, inputs first), as Captum's DeepLift
runs it, and each swapped function sees both halves: its backward pass replaces the local
gradient by the multiplier Δout / Δin of each input against its baseline.
  rescale(act):          dx = dy · (act(x) − act(x')) / (x − x')     (Captum's `nonlinear`)
  rescale_max_pool(pool): Captum's `maxpool` rule: with m = max(y, y'), the input's pooling
                          gradient carries dy · (m − y') and the baseline's dy · (y − m), both
                          summed over the window's positions and divided by Δin.
Where |Δin| < eps (Captum's 1e-10) each half keeps its own plain gradient. Both halves get the
same multipliers (the backward pass seeds both halves' target scores, as Captum does), so
`attribution = (x − x') · d/dx` sums to S(x) − S(x') (summation-to-delta).
Used through `guided.swap(model, rescale(model.act), rescale_max_pool(model.max_pool))`.

Where we differ from Captum 0.9 as shipped, and why (tests/explain/test_deep_lift.py):
- Its max-pool rule "unpools" with `max_unpool2d`, which writes one window's value where
  overlapping windows (ResNet's 3×3/2 stem pool) share their maximum, dropping the others';
  ours is the pool's own gradient, which sums them, so summation-to-delta holds.
- Its hooks lose one rule of two hooked modules in a row (a ReLU then a MaxPool2d, as in
  torchvision's VGG and ResNet): the ReLU's hook reads the gradient the pool received before
  the pool's own hook replaced it, so the max-pool rule has no effect there and the
  attributions do not sum to the output difference for a non-constant baseline. Each of our
  rules receives what the rules above it computed.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp

EPS = 1e-10  # Captum's DeepLift default: |Δin| below it keeps the plain gradient


def _halves(a: jax.Array) -> tuple[jax.Array, jax.Array]:
  half = a.shape[0] // 2
  return a[:half], a[half:]


def _twice(a: jax.Array) -> jax.Array:
  return jnp.concatenate([a, a])


def _rescaled(plain: jax.Array, numerator: jax.Array, delta_in: jax.Array,
              eps: float) -> jax.Array:
  """numerator / Δin where |Δin| >= eps, else the plain gradient (2B rows each)."""
  small = jnp.abs(delta_in) < eps
  return jnp.where(small, plain, numerator / jnp.where(small, 1, delta_in))  # no 0/0 in grads


@functools.lru_cache(maxsize=None)  # one function per (act, eps): cloned models stay equal
def rescale(act: Callable, eps: float = EPS) -> Callable:
  """`act` on a [inputs; baselines] batch, with DeepLIFT's rescale rule as its backward."""
  @jax.custom_vjp
  def f(x):
    return act(x)

  def fwd(x):
    y = act(x)
    return y, (x, y)

  def bwd(residuals, dy):
    x, y = residuals
    plain = jax.vjp(act, x)[1](dy)[0]
    (x_in, x_base), (y_in, y_base) = _halves(x), _halves(y)
    delta_in = _twice(x_in - x_base)
    return (_rescaled(plain, dy * _twice(y_in - y_base), delta_in, eps),)

  f.defvjp(fwd, bwd)
  return f


@functools.lru_cache(maxsize=None)
def rescale_max_pool(pool: Callable, eps: float = EPS) -> Callable:
  """`pool(x, window, stride, padding)` on a [inputs; baselines] batch, with Captum's
  max-pool rule as its backward (the window's winners of input and baseline share Δout)."""
  @functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
  def f(x, window, stride, padding=((0, 0), (0, 0))):
    return pool(x, window, stride, padding)

  def fwd(x, window, stride, padding):
    y = pool(x, window, stride, padding)
    return y, (x, y)

  def bwd(window, stride, padding, residuals, dy):
    x, y = residuals

    def unpool(rows, cotangent):  # the pool's gradient: each window's value to its maximum
      return jax.vjp(lambda z: pool(z, window, stride, padding), rows)[1](cotangent)[0]

    (x_in, x_base), (y_in, y_base), (dy_in, dy_base) = _halves(x), _halves(y), _halves(dy)
    cross = jnp.maximum(y_in, y_base)
    spread = unpool(x_in, dy_in * (cross - y_base)) + unpool(x_base, dy_base * (y_in - cross))
    return (_rescaled(unpool(x, dy), _twice(spread), _twice(x_in - x_base), eps),)

  f.defvjp(fwd, bwd)
  return f

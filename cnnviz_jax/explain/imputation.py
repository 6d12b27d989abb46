"""ROAD's noisy linear imputation: removed pixels become the weighted mean of their neighbors.

Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022 (arXiv:2202.00449), section 4. Each removed pixel's value is
the mean of its 8 neighbors (edge neighbors weigh 1/6, corner neighbors 1/12; neighbors outside
the image drop out), known pixels fixed: a sparse linear system over the removed pixels, one
per image and channel. pytorch-grad-cam 1.5.7 (`metrics/road.py`, `NoisyLinearImputer`) builds
it with scipy and solves it with SuperLU in float64, then adds `noise` × N(0, 1) to the
removed pixels. We solve the same system in the image's own dtype by conjugate gradients
preconditioned with a geometric multigrid V-cycle (Galerkin coarse operators, so every
level stays symmetric positive definite): a few tens of stencil passes on the pixel grid,
batched over images, jit-able and shardable. Tolerance `tol` on the relative residual;
against SuperLU's solution the imputed values agree to ~1e-6 of the image's scale in float32
at 64 px, ~1e-5 at 224 px with 90% of the pixels removed (tests/explain/test_road.py).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

# (row offset, column offset) -> weight: pytorch-grad-cam's `neighbors_weights`
NEIGHBORS = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12, (0, -1): 1 / 6,
             (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # stencil slots, center 4
_CENTER = 4
_COARSEST = 8  # sides at or below this: the level is solved exactly (dense, <= 64 unknowns)


def _shifted(u: jax.Array, dy: int, dx: int) -> jax.Array:
  """v[:, i, j] = u[:, i + dy, j + dx], zero outside the image. u: (N, H, W, ...)."""
  height, width = u.shape[1:3]
  pad = ((0, 0), (1, 1), (1, 1)) + ((0, 0),) * (u.ndim - 3)
  return jnp.pad(u, pad)[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]


def stencil_apply(coefficients: jax.Array, u: jax.Array) -> jax.Array:
  """(A u)_i = Σ_o coefficients[o, i] u_{i+o}: coefficients (9, N, H, W), u (N, H, W, C).
  One pad and nine shifted slices: XLA fuses them into a single pass over u."""
  height, width = u.shape[1:3]
  padded = jnp.pad(u, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return sum(coefficients[k][..., None] * padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
             for k, (dy, dx) in enumerate(OFFSETS))


def fine_system(removed: jax.Array, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The imputation system on the whole grid: (stencil (9, N, H, W), right-hand side).

  removed (N, H, W) in {0, 1}, images (N, H, W, C). Rows of removed pixels are the peer's
  equations, d_i u_i − Σ_{removed j} w_ij u_j = Σ_{known j} w_ij x_j (d_i: the weights of
  the neighbors inside the image); rows of known pixels are the identity with a zero
  right-hand side, so the grid operator is symmetric positive definite whenever one pixel
  is known, and the solution is zero there.
  """
  ones = jnp.ones_like(removed)
  columns = []
  for dy, dx in OFFSETS:
    if (dy, dx) == (0, 0):
      inside = sum(w * _shifted(ones, *o) for o, w in NEIGHBORS.items())
      columns.append(removed * inside + (1 - removed))
    else:
      columns.append(-NEIGHBORS[dy, dx] * removed * _shifted(removed, dy, dx))
  known = (1 - removed)[..., None] * images
  rhs = removed[..., None] * sum(w * _shifted(known, *o) for o, w in NEIGHBORS.items())
  return jnp.stack(columns), rhs


def _coarse_side(side: int) -> int:
  return side // 2 + 1  # coarse points at fine 0, 2, …, covering the last fine point


def _interleave(even: jax.Array, odd: jax.Array, axis: int) -> jax.Array:
  """even[0], odd[0], even[1], … along `axis` (len(even) = len(odd) + 1)."""
  last = jax.lax.slice_in_dim(even, even.shape[axis] - 1, None, axis=axis)
  pairs = jnp.stack([jax.lax.slice_in_dim(even, 0, -1, axis=axis), odd], axis=axis + 1)
  shape = list(even.shape)
  shape[axis] = 2 * odd.shape[axis]
  return jnp.concatenate([pairs.reshape(shape), last], axis=axis)


def _prolong_axis(coarse: jax.Array, axis: int, size: int) -> jax.Array:
  """Linear interpolation from coarse points at fine 0, 2, 4, … to `size` fine points."""
  left = jax.lax.slice_in_dim(coarse, 0, -1, axis=axis)
  right = jax.lax.slice_in_dim(coarse, 1, None, axis=axis)
  fine = _interleave(coarse, (left + right) / 2, axis)
  return jax.lax.slice_in_dim(fine, 0, size, axis=axis)


def _restrict_axis(fine: jax.Array, axis: int) -> jax.Array:
  """The transpose of `_prolong_axis`: coarse i gathers fine 2i and half of 2i ± 1."""
  length = 2 * _coarse_side(fine.shape[axis]) - 1
  pad = [(0, 0)] * fine.ndim
  pad[axis] = (0, length - fine.shape[axis])
  fine = jnp.pad(fine, pad)
  even = jax.lax.slice_in_dim(fine, 0, None, 2, axis=axis)
  odd = jax.lax.slice_in_dim(fine, 1, None, 2, axis=axis) / 2
  pad[axis] = (1, 0)
  before = jnp.pad(odd, pad)
  pad[axis] = (0, 1)
  return even + before + jnp.pad(odd, pad)


def _prolong(coarse: jax.Array, size: tuple[int, int]) -> jax.Array:
  return _prolong_axis(_prolong_axis(coarse, 1, size[0]), 2, size[1])


def _restrict(fine: jax.Array) -> jax.Array:
  return _restrict_axis(_restrict_axis(fine, 1), 2)


@functools.cache
def _probe_colors(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
  """9 probe fields coloring the grid by (i mod 3, j mod 3), and for each point and stencil
  slot the color of the neighbor in that slot: each probe meets a 3×3 stencil at most once."""
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  color = (i % 3) * 3 + j % 3
  probes = np.eye(9, dtype=np.float32)[color]  # (H, W, 9)
  slot_color = np.stack([((i + dy) % 3) * 3 + (j + dx) % 3 for dy, dx in OFFSETS], -1)
  return probes, slot_color


def galerkin(coefficients: jax.Array) -> jax.Array:
  """Stencil of Pᵀ A P on the coarse grid (still 3×3 for linear interpolation P)."""
  height, width = coefficients.shape[2:]
  coarse = _coarse_side(height), _coarse_side(width)
  probes, slot_color = _probe_colors(*coarse)
  probes = jnp.broadcast_to(jnp.asarray(probes, coefficients.dtype),
                            (coefficients.shape[1], *probes.shape))
  response = _restrict(stencil_apply(coefficients, _prolong(probes, (height, width))))
  # a slot across the border reads a color that no point of the stencil has: zero
  return jnp.moveaxis(jnp.take_along_axis(response, jnp.asarray(slot_color)[None], axis=-1),
                      -1, 0)


def _dense(coefficients: jax.Array) -> jax.Array:
  """(N, n, n) matrices of stencils on a small grid, n = H·W."""
  height, width = coefficients.shape[2:]
  index = np.arange(height * width).reshape(height, width)
  rows, cols, slots = [], [], []
  for k, (dy, dx) in enumerate(OFFSETS):
    i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    ok = (i + dy >= 0) & (i + dy < height) & (j + dx >= 0) & (j + dx < width)
    rows.append(index[ok]), cols.append(index[i[ok] + dy, j[ok] + dx]), slots.append(
        np.full(ok.sum(), k))
  rows, cols, slots = map(np.concatenate, (rows, cols, slots))
  values = coefficients.reshape(9, -1, height * width)[slots, :, rows].T  # (N, entries)
  n = height * width
  return jnp.zeros((values.shape[0], n, n), coefficients.dtype).at[:, rows, cols].set(values)


def hierarchy(coefficients: jax.Array) -> tuple[list[jax.Array], jax.Array]:
  """([stencils, finest first], inverse of the coarsest level's matrix)."""
  levels = [coefficients]
  while max(levels[-1].shape[2:]) > _COARSEST:
    levels.append(galerkin(levels[-1]))
  return levels, jnp.linalg.inv(_dense(levels[-1]))


def v_cycle(levels: list[jax.Array], coarsest_inverse: jax.Array, rhs: jax.Array,
            sweeps: int = 2, damping: float = 2 / 3, level: int = 0) -> jax.Array:
  """One symmetric V-cycle from a zero guess: damped Jacobi before and after each coarse
  correction (the same count, so the preconditioner is symmetric)."""
  if level == len(levels) - 1:
    n, height, width = rhs.shape[:3]
    flat = rhs.reshape(n, height * width, -1)
    return jnp.einsum("nij,njc->nic", coarsest_inverse, flat).reshape(rhs.shape)
  a = levels[level]
  step = damping / a[_CENTER][..., None]
  u = step * rhs
  for _ in range(sweeps - 1):
    u = u + step * (rhs - stencil_apply(a, u))
  correction = v_cycle(levels, coarsest_inverse, _restrict(rhs - stencil_apply(a, u)), sweeps,
                       damping, level + 1)
  u = u + _prolong(correction, rhs.shape[1:3])
  for _ in range(sweeps):
    u = u + step * (rhs - stencil_apply(a, u))
  return u


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.sum(a * b, axis=(1, 2))  # one value per system: (N, C)


def conjugate_gradients(coefficients: jax.Array, rhs: jax.Array, tol: float = 1e-6,
                        max_iterations: int = 100) -> jax.Array:
  """Solves A u = rhs per image and channel (A: the stencil, SPD) by multigrid-preconditioned
  conjugate gradients from u = 0. Each system stops when ‖r‖ ≤ tol ‖rhs‖ and then stays
  fixed, so a result does not depend on which other images share the batch."""
  levels, coarsest = hierarchy(coefficients)
  goal = (tol**2) * _dot(rhs, rhs)
  safe = lambda d: jnp.where(d > 0, d, 1)  # noqa: E731  (0 only on a converged system)

  def step(state):  # the preconditioning first, so the loop body holds the one V-cycle
    u, r, p, rz, on, it = state
    z = v_cycle(levels, coarsest, r)
    rz_new = _dot(r, z)
    p = z + jnp.where(it > 0, rz_new / safe(rz), 0)[:, None, None] * p
    q = stencil_apply(coefficients, p)
    alpha = jnp.where(on, rz_new / safe(_dot(p, q)), 0)[:, None, None]
    u, r = u + alpha * p, r - alpha * q
    return u, r, p, rz_new, on & (_dot(r, r) > goal), it + 1

  state = (jnp.zeros_like(rhs), rhs, jnp.zeros_like(rhs), jnp.ones_like(goal), goal > 0, 0)
  state = jax.lax.while_loop(lambda s: jnp.any(s[4]) & (s[5] < max_iterations), step, state)
  return state[0]


@functools.partial(jax.jit, static_argnames=("noise_scale", "tol", "max_iterations"))
def impute(images: jax.Array, removed: jax.Array, noise: jax.Array | None = None,
           noise_scale: float = 0.01, tol: float = 1e-6, max_iterations: int = 100
           ) -> jax.Array:
  """images (N, H, W, C) with the pixels where removed (N, H, W) is true replaced by the
  linear imputation, plus noise_scale × noise there (noise: standard normal (N, H, W, C)).
  An image with no known pixel has no solution (the peer's solver fails the same way).
  Solved in at least float32 (bfloat16 images come back as bfloat16). Jitted (cached per
  shape): eager callers compile the solver once, not op by op."""
  wide = images.astype(jnp.promote_types(images.dtype, jnp.float32))
  coefficients, rhs = fine_system(removed.astype(wide.dtype), wide)
  solution = conjugate_gradients(coefficients, rhs, tol, max_iterations)
  if noise is not None:
    solution = solution + noise_scale * noise.astype(wide.dtype)
  return jnp.where(removed[..., None], solution, wide).astype(images.dtype)

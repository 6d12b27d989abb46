"""Weighted linear fits with an intercept, for the surrogate explainers (surrogate.py): the
problems scikit-learn's LinearRegression and Lasso solve with `sample_weight`, in jnp so
they jit, vmap and differentiate.

Both center X and y on their weighted means (the intercept) and scale each row by √w, as
sklearn's `_preprocess_data` does:
  least squares   min ||√w (y − X b)||²                    (the minimum-norm solution)
  lasso           min ½ ||√w' (y − X b)||² + α n ||b||₁    w' = w · n / Σw (as sklearn)
"""
import jax
import jax.numpy as jnp


def _centered(features: jax.Array, y: jax.Array, weights: jax.Array):
  """(√w (X − X̄), √w (y − ȳ), X̄, ȳ) with weighted means X̄ (F,), ȳ (K,)."""
  total = jnp.sum(weights)
  x_mean = weights @ features / total
  y_mean = weights @ y / total
  root = jnp.sqrt(weights)[:, None]
  return root * (features - x_mean), root * (y - y_mean), x_mean, y_mean


def least_squares(features: jax.Array, y: jax.Array, weights: jax.Array,
                  rcond: float = 1e-6) -> tuple[jax.Array, jax.Array]:
  """Weighted least squares with an intercept: (coefficients (K, F), intercepts (K,)).

  features (n, F), y (n, K), weights (n,). As sklearn's LinearRegression (its lstsq cutoff:
  singular values below rcond × the largest count as zero): the minimum-norm solution when
  there are fewer samples than features.
  """
  x_c, y_c, x_mean, y_mean = _centered(features, y, weights)
  coef = (jnp.linalg.pinv(x_c, rtol=rcond) @ y_c).T
  return coef, y_mean - coef @ x_mean


def _soft(value: jax.Array, threshold) -> jax.Array:
  return jnp.sign(value) * jnp.maximum(jnp.abs(value) - threshold, 0.0)


def _coordinate_descent(gram: jax.Array, xy: jax.Array, penalty, sweeps: int) -> jax.Array:
  """Cyclic coordinate descent on ½ b'Gb − b'c + penalty ||b||₁, from b = 0: (F, K)."""
  num = gram.shape[0]
  diag = jnp.diagonal(gram)

  def update(i, coef):
    j = i % num
    partial = xy[j] - gram[j] @ coef + diag[j] * coef[j]  # (K,)
    new = jnp.where(diag[j] > 0, _soft(partial, penalty) / jnp.where(diag[j] > 0, diag[j], 1),
                    0.0)
    return coef.at[j].set(new)

  return jax.lax.fori_loop(0, sweeps * num, update, jnp.zeros_like(xy))


def _polish(gram: jax.Array, xy: jax.Array, penalty, coef: jax.Array) -> jax.Array:
  """The exact minimizer on coef's support and signs (one linear solve), where it satisfies
  the optimality conditions; else coef. Coordinate descent converges linearly; once it has
  found the support, this lands on the optimum to rounding."""
  active = coef != 0
  signs = jnp.sign(coef)
  both = active[:, None] & active[None, :]
  system = jnp.where(both, gram, 0.0) + jnp.diag(jnp.where(active, 0.0, 1.0))
  exact = jnp.linalg.solve(system, jnp.where(active, xy - penalty * signs, 0.0))
  exact = jnp.where(active, exact, 0.0)
  slack = 1e-4 * penalty + 1e-6 * jnp.max(jnp.abs(xy))
  inactive_ok = jnp.abs(xy - gram @ exact) <= penalty + slack
  ok = jnp.all(jnp.where(active, jnp.sign(exact) == signs, inactive_ok))
  return jnp.where(ok, exact, coef)


def lasso(features: jax.Array, y: jax.Array, weights: jax.Array, alpha: float,
          sweeps: int = 200) -> tuple[jax.Array, jax.Array]:
  """Weighted Lasso with an intercept: (coefficients (K, F), intercepts (K,)).

  Tibshirani, "Regression Shrinkage and Selection via the Lasso", JRSS B 58(1), 1996. The
  problem of sklearn's Lasso(alpha) fitted with sample_weight; solved by `sweeps` cyclic
  coordinate-descent passes (Friedman, Hastie & Tibshirani, JSS 33(1), 2010) and a final
  solve on the support found. sklearn stops earlier, at a duality gap of tol · ||y||²
  (tol=1e-4), so its coefficients sit near, not at, this optimum.
  """
  weights = weights * (weights.shape[0] / jnp.sum(weights))
  x_c, y_c, x_mean, y_mean = _centered(features, y, weights)
  gram, xy = x_c.T @ x_c, x_c.T @ y_c  # (F, F), (F, K)
  penalty = alpha * features.shape[0]
  coef = _coordinate_descent(gram, xy, penalty, sweeps)
  coef = jax.vmap(lambda c, k: _polish(gram, c, penalty, k), in_axes=(1, 1), out_axes=1)(
      xy, coef).T  # (K, F)
  return coef, y_mean - coef @ x_mean

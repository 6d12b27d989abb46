"""KPCA-CAM: the activations' first kernel principal component as the map.

Karmani, Sivakaran, Prasad, Ali, Yang & Tang, "KPCA-CAM: Visual Explainability of Deep
Computer Vision Models using Kernel PCA", IEEE MMSP 2024. arXiv:2410.00267.

pytorch-grad-cam centers each image's (h·w, C) activations over positions and fits
sklearn's KernelPCA(n_components=1) to them; this is that computation in jnp, batched:
  K = kernel(A, A)                    (h·w, h·w), sklearn's kernels and defaults
  K_c = K - row means - column means + total mean        (sklearn's KernelCenterer)
  (λ, v) = the largest eigenpair of K_c, λ clipped at 0
  v's sign: its largest-magnitude entry positive          (sklearn's svd_flip)
  map = ReLU(v · sqrt(λ))
sklearn switches to ARPACK (a random start, the same eigenpair to its tolerance) above 200
positions; we always use the dense symmetric eigensolver.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam

KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def gram(points: jax.Array, kernel: str = "sigmoid", gamma: float | None = None,
         coef0: float = 1.0, degree: int = 3) -> jax.Array:
  """(B, n, d) -> (B, n, n) kernel matrices, as sklearn.metrics.pairwise_kernels
  (gamma None: 1 / d)."""
  if kernel not in KERNELS:
    raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")
  gamma = 1.0 / points.shape[-1] if gamma is None else gamma
  dot = jnp.einsum("bid,bjd->bij", points, points)
  if kernel == "sigmoid":
    return jnp.tanh(gamma * dot + coef0)
  if kernel == "poly":
    return (gamma * dot + coef0) ** degree
  if kernel == "linear":
    return dot
  sq_norms = jnp.diagonal(dot, axis1=1, axis2=2)
  if kernel == "cosine":  # zero rows stay zero, as sklearn.preprocessing.normalize leaves them
    norms = jnp.sqrt(sq_norms)
    norms = jnp.where(norms > 0, norms, 1.0)
    return dot / (norms[:, :, None] * norms[:, None, :])
  distances = jnp.maximum(sq_norms[:, :, None] + sq_norms[:, None, :] - 2 * dot, 0)
  distances = distances * (1 - jnp.eye(dot.shape[-1], dtype=dot.dtype))  # exact 0 on i = j
  return jnp.exp(-gamma * distances)


def kernel_pca_projection(activations: jax.Array, kernel: str = "sigmoid",
                          gamma: float | None = None, coef0: float = 1.0,
                          degree: int = 3) -> jax.Array:
  """(B, h, w, C) -> (B, h, w): the positions' coordinates on the first kernel principal
  component (sklearn's KernelPCA(1).fit_transform of the centered activations)."""
  b, h, w, c = activations.shape
  flat = activations.reshape(b, h * w, c)
  flat = flat - jnp.mean(flat, axis=1, keepdims=True)
  k = gram(flat, kernel, gamma, coef0, degree)
  k = (k - jnp.mean(k, axis=1, keepdims=True) - jnp.mean(k, axis=2, keepdims=True)
       + jnp.mean(k, axis=(1, 2), keepdims=True))
  eigenvalues, eigenvectors = jnp.linalg.eigh(k)  # ascending
  top, vector = jnp.maximum(eigenvalues[:, -1], 0), eigenvectors[:, :, -1]  # (B,), (B, n)
  biggest = jnp.take_along_axis(vector, jnp.argmax(jnp.abs(vector), axis=1)[:, None], axis=1)
  vector = vector * jnp.where(biggest < 0, -1.0, 1.0)
  return (vector * jnp.sqrt(top)[:, None]).reshape(b, h, w)


def kpca_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
             kernel: str = "sigmoid", gamma: float | None = None, coef0: float = 1.0,
             degree: int = 3, **options) -> jax.Array:
  """KPCA-CAM maps (B, h, w) >= 0 (see the module docstring); class-agnostic and
  gradient-free: a target only repeats the map per target (B, K, h, w).

  kernel: 'sigmoid' (the peer's default), 'rbf', 'poly', 'linear' or 'cosine'; gamma
  None = 1 / channels; coef0 and degree as sklearn. The map is itself a projection, so
  eigen_smooth changes nothing (as in pytorch-grad-cam). Differentiable in the parameters
  wherever the top eigenvalue is simple.
  """
  options.pop("eigen_smooth", None)
  project = lambda a: kernel_pca_projection(a, kernel, gamma, coef0, degree)  # noqa: E731
  return cam.class_activation_maps(model, variables, x, layer, target, lambda a, g: a,
                                   uses_gradients=False, reduce=project, **options)

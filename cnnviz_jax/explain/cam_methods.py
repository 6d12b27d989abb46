"""More of the CAM family, with grad_cam.py's calling convention (machinery: cam.py):

  method(model, variables, x, layer=None, target=None, *, eigen_smooth=False,
         aug_smooth=False, size=None, target_chunk=64) -> (B, h, w) or (B, K, h, w), >= 0

Each reproduces the arithmetic of its pytorch-grad-cam 1.5.7 class: the rule below, the
ReLU after the channel sum (or after the first-principal-component projection with
eigen_smooth), min-max normalization only when layers are combined or a size is asked for.
KPCA-CAM is in kernel_pca.py.
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam, layer_gradients, targets
from cnnviz_jax.explain.grad_cam import _grad_cam_weigh, grad_cam

_SPATIAL = (1, 2)


def hires_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
              **options) -> jax.Array:
  """HiResCAM: ReLU(sum_k dS/dA_ij^k · A_ij^k), the gradient kept per location.

  Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
  convolutional neural networks", arXiv:2011.08891, 2020. Faithful (the map sums to the
  score's first-order term) without eigen_smooth.
  """
  return cam.class_activation_maps(model, variables, x, layer, target, lambda a, g: a * g,
                                   **options)


def grad_cam_elementwise(model: nn.Module, variables, x: jax.Array, layer=None,
                         target: Any = None, **options) -> jax.Array:
  """pytorch-grad-cam's GradCAMElementWise: ReLU(sum_k ReLU(dS/dA_ij^k · A_ij^k)).

  HiResCAM with each channel's contribution rectified before the sum (the library's own
  variant, no paper).
  """
  return cam.class_activation_maps(model, variables, x, layer, target,
                                   lambda a, g: jax.nn.relu(a * g), **options)


def eigen_grad_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
                   **options) -> jax.Array:
  """EigenGradCAM: ReLU of dS/dA · A projected on its first principal component.

  pytorch-grad-cam's class-discriminative Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM: Class
  Activation Map using Principal Components", IJCNN 2020, arXiv:2008.00299) on gradients ×
  activations. Always a projection, so eigen_smooth changes nothing. The sign of the
  direction follows `cam.eigen_projection`'s convention (pytorch-grad-cam keeps LAPACK's).
  """
  options.pop("eigen_smooth", None)
  return cam.class_activation_maps(model, variables, x, layer, target, lambda a, g: a * g,
                                   eigen_smooth=True, **options)


def fem(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
        k: float = 2.0, **options) -> jax.Array:
  """FEM: w^k = the fraction of positions where A^k > mean(A^k) + k·std(A^k).

  Fuad, Martin, Giot, Bourqui, Benois-Pineau & Zemmari, "Features understanding in 3D CNNs
  for actions recognition in video", IPTA 2020 (hal-02963298). Gradient-free and
  class-agnostic: a target only repeats the map per target. std is the population one, as
  numpy's. pytorch-grad-cam's FEM ignores eigen_smooth; here it projects the weighted
  activations as for every CAM. Differentiable in the parameters through A (the
  thresholded fractions are piecewise constant).
  """
  def weigh(a, g):
    del g
    threshold = (jnp.mean(a, axis=_SPATIAL, keepdims=True)
                 + k * jnp.std(a, axis=_SPATIAL, keepdims=True))
    return a * jnp.mean((a > threshold).astype(a.dtype), axis=_SPATIAL, keepdims=True)

  return cam.class_activation_maps(model, variables, x, layer, target, weigh,
                                   uses_gradients=False, **options)


def random_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
               key: jax.Array | None = None,
               weights: jax.Array | Sequence[jax.Array] | None = None, **options) -> jax.Array:
  """RandomCAM, a baseline: ReLU(sum_k w^k A^k) with w ~ uniform(-1, 1) per image, channel
  and layer (pytorch-grad-cam's RandomCAM).

  key: draws the weights; or weights: (B, C) for one layer, a sequence of those for a
  list of layers (e.g. the peer's numpy draws). Under aug_smooth a key draws weights for
  every variant, given weights serve all six. Class-agnostic: a target only repeats the
  map per target.
  """
  layers = layer_gradients.resolve_layers(model, variables, x, layer)
  if (key is None) == (weights is None):
    raise ValueError("random_cam needs exactly one of key= and weights=")
  if weights is not None:
    given = [weights] if hasattr(weights, "shape") else list(weights)
    if len(given) != len(layers):
      raise ValueError(f"random_cam got {len(given)} weight arrays for {len(layers)} layers")
  else:
    given = list(jax.random.split(key, len(layers)))

  def rule(source) -> cam.Weigh:
    def weigh(a, g):
      del g
      if weights is None:
        w = jax.random.uniform(source, (a.shape[0], a.shape[-1]), a.dtype, -1.0, 1.0)
      else:
        w = jnp.asarray(source, a.dtype)
        w = jnp.tile(w, (a.shape[0] // w.shape[0], 1))  # the augmented variants
      return a * w[:, None, None, :]
    return weigh

  return cam.class_activation_maps(
      model, variables, x, layers, target,
      {name: rule(source) for name, source in zip(layers, given)}, uses_gradients=False,
      **options)


def shapley_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
                **options) -> jax.Array:
  """ShapleyCAM: w^k = mean_ij(dS/dA - ½ (d²S/dA²)·A)_ij^k, Grad-CAM with the
  second-order term of the score's Taylor expansion around A.

  Cai, "CAMs as Shapley Value-based Explainers", arXiv:2501.06261, 2025. The
  Hessian-vector product is `jax.jvp` of the layer gradient along A (the peer:
  autograd.grad of the gradient with grad_outputs=A). In a piecewise-linear network the
  Hessian of a logit vanishes and this is Grad-CAM; the term matters for scores such as
  the paper's ReST (logit minus cross-entropy: a callable target).
  """
  return cam.class_activation_maps(model, variables, x, layer, target, _grad_cam_weigh,
                                   curvature=-0.5, **options)


def finer_target(target: Any, images: int, alpha: float = 1.0,
                 comparisons: Sequence[int] = (1, 2, 3)) -> Callable[[jax.Array], jax.Array]:
  """Finer-CAM's score of each target class c against its most similar classes:
    S = sum_j p_j (s_c - alpha s_j) / (sum_j p_j + 1e-9),   p = softmax(s)
  j: the classes ranked `comparisons` by |s_j - s_c| (rank 0 is c itself). The ranking is
  read off the outputs without a gradient; p keeps its gradient, as the peer's.
  images: the batch the explainer was given (rows beyond it are augmented copies).
  """
  def score(outputs):  # (R, N) -> (R,) or (R, K)
    fixed = jax.lax.stop_gradient(outputs)
    resolved = targets.resolve(target, fixed, tile=outputs.shape[0] // images)
    if resolved.classes is None:
      raise ValueError("finer_cam needs class targets, not a score function")
    num = outputs.shape[-1]
    ranks = [r for r in comparisons if 0 <= r < num]
    if not ranks:
      raise ValueError(f"finer_cam: no comparison rank in {comparisons} for {num} classes")
    main = resolved.classes  # (R, K)
    main_score = jnp.take_along_axis(fixed, main, axis=1)
    distance = jnp.abs(fixed[:, None, :] - main_score[..., None])  # (R, K, N)
    distance = jnp.where(jax.nn.one_hot(main, num, dtype=bool), -1.0, distance)  # c first
    nearest = jax.lax.top_k(-distance, max(ranks) + 1)[1][..., jnp.asarray(ranks)]  # (R,K,J)
    weights = jnp.take_along_axis(jax.nn.softmax(outputs)[:, None, :], nearest, axis=2)
    picked = jnp.take_along_axis(outputs[:, None, :], nearest, axis=2)
    own = jnp.take_along_axis(outputs, main, axis=1)[..., None]
    finer = jnp.sum(weights * (own - alpha * picked), -1) / (jnp.sum(weights, -1) + 1e-9)
    return finer if resolved.multi else finer[:, 0]

  return score


def finer_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None, *,
              alpha: float = 1.0, comparisons: Sequence[int] = (1, 2, 3),
              base: Callable[..., jax.Array] = grad_cam, **options) -> jax.Array:
  """Finer-CAM: `base` (Grad-CAM) of the target's score against its most similar classes
  (see `finer_target`); target: the classes to explain (None: top-1; every class form).

  Zhang, Gu, Chowdhury, Mai, Carlyn, Berger-Wolf, Su & Chao, "Finer-CAM: Spotting the
  Difference Reveals Finer Details for Visual Explanation", CVPR 2025. arXiv:2501.11309.
  Defaults as pytorch-grad-cam's FinerCAM: alpha 1, the 3 nearest classes. The peer has no
  aug_smooth here; ours compares the classes of each augmented variant.
  """
  score = finer_target(target, x.shape[0], alpha, comparisons)
  return base(model, variables, x, layer, score, **options)

"""Grad-CAM and its family: gradient-weighted class activation maps at any layer.

All share one calling convention (see cam.py for the machinery):

  method(model, variables, x, layer=None, target=None, *, eigen_smooth=False,
         aug_smooth=False, size=None, target_chunk=64) -> (B, h, w) or (B, K, h, w), >= 0

layer: a name from `cj.models.layer_names`, a list of names (maps combined as in
pytorch-grad-cam), or None for the last spatial layer. One layer, no size: the raw ReLU
map at that layer's resolution (differentiable, comparable across classes). Several
layers, size=(H, W) or aug_smooth: min-max normalized maps (at `size` if given; with the
input's size they are exactly pytorch-grad-cam's output). target: see targets.py ('all'
= CAM for every class from one forward pass). `maps.upsample` / `maps.normalize` help
display raw maps.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cam, guided, maps

_SPATIAL = (1, 2)


def _grad_cam_weigh(a: jax.Array, g: jax.Array) -> jax.Array:
  return a * jnp.mean(g, axis=_SPATIAL, keepdims=True)


def grad_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
             **options) -> jax.Array:
  """Grad-CAM: ReLU(sum_k mean_ij(dS/dA_ij^k) A^k).

  Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", ICCV 2017. arXiv:1610.02391.
  """
  return cam.class_activation_maps(model, variables, x, layer, target, _grad_cam_weigh,
                                   **options)


def grad_cam_plus_plus(model: nn.Module, variables, x: jax.Array, layer=None,
                       target: Any = None, *, eps: float = 0.0, **options) -> jax.Array:
  """Grad-CAM++ with the paper's closed form (its eq. 19, exponential score).

  Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep
  Convolutional Networks", WACV 2018. arXiv:1710.11063.
    alpha_ij^k = g^2 / (2 g^2 + (sum_ab A_ab^k) g^3),  g = dS/dA_ij^k
    w^k = sum_ij alpha_ij^k ReLU(g)   (the exp(S) factor of eq. 19 cancels on normalizing)
  The sum over (a, b) multiplies g^3 (some libraries wrongly use sum_ab A_ab g_ab^3).
  With eps=0 (default) alpha = 1 / (2 + g sum A) where g != 0 and the denominator is
  non-zero, else 0 — the same value, without the under/overflow of g^2 and g^3.
  pytorch-grad-cam adds 1e-6 to the denominator instead: eps=1e-6 reproduces it exactly
  (it shifts the maps where gradients are small, e.g. tiny-logit models).
  """
  def weigh(a, g):
    sum_a = jnp.sum(a, axis=_SPATIAL, keepdims=True)  # (B, 1, 1, C)
    if eps > 0:
      alpha = g**2 / (2 * g**2 + sum_a * g**3 + eps)
    else:
      denom = 2 + sum_a * g
      ok = (g != 0) & (denom != 0)
      alpha = jnp.where(ok, 1 / jnp.where(ok, denom, 1), 0)
    alpha = jnp.where(g != 0, alpha, 0)
    return a * jnp.sum(alpha * jax.nn.relu(g), axis=_SPATIAL, keepdims=True)

  return cam.class_activation_maps(model, variables, x, layer, target, weigh, **options)


def xgrad_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
              *, eps: float = 1e-7, **options) -> jax.Array:
  """XGrad-CAM: w^k = sum_ij (A_ij^k / sum_ab A_ab^k) dS/dA_ij^k.

  Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of
  CNNs", BMVC 2020. arXiv:2008.02312. eps as pytorch-grad-cam (dead channels weigh 0).
  """
  def weigh(a, g):
    sum_a = jnp.sum(a, axis=_SPATIAL, keepdims=True)
    return a * jnp.sum(g * a / (sum_a + eps), axis=_SPATIAL, keepdims=True)

  return cam.class_activation_maps(model, variables, x, layer, target, weigh, **options)


def layer_cam(model: nn.Module, variables, x: jax.Array, layer=None, target: Any = None,
              **options) -> jax.Array:
  """Layer-CAM: ReLU(sum_k ReLU(dS/dA_ij^k) A_ij^k), a weight per location; good at
  shallow layers and for combining several.

  Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for
  Localization", IEEE TIP 30, 2021.
  """
  return cam.class_activation_maps(model, variables, x, layer, target,
                                   lambda a, g: jax.nn.relu(g) * a, **options)


def eigen_cam(model: nn.Module, variables, x: jax.Array, layer=None, **options) -> jax.Array:
  """Eigen-CAM: ReLU of the activations projected on their first principal component.

  Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components",
  IJCNN 2020. arXiv:2008.00299. Class-agnostic and gradient-free (no target); the
  sign convention is in `cam.eigen_projection`.
  """
  options.pop("eigen_smooth", None)
  return cam.class_activation_maps(model, variables, x, layer, None, lambda a, g: a,
                                   uses_gradients=False, eigen_smooth=True, **options)


def guided_grad_cam(model: nn.Module, variables, x: jax.Array, layer=None,
                    target: Any = None, **options) -> jax.Array:
  """Guided Grad-CAM: guided backprop × the normalized Grad-CAM upsampled to the input.

  Selvaraju et al., ICCV 2017 (section 3.2). -> (B, H, W, C) or (B, K, H, W, C).
  Top-1 targets are resolved once, so both factors explain the same class.
  """
  if target is None:  # one shared forward decides the class for both factors
    target = jnp.argmax(model.apply(variables, x, train=False), axis=-1)
  heat = grad_cam(model, variables, x, layer, target, **options)
  heat = maps.normalize(maps.upsample(heat, x.shape[1:3]))  # (B, [K,] H, W) in [0, 1]
  return guided.guided_backprop(model, variables, x, target) * heat[..., None]

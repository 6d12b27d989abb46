"""Layer attributions: how much each unit of an inner layer adds to a target's score.

  layer_gradient_x_activation  ∂S/∂A · A                    (Captum: LayerGradientXActivation)
  internal_influence           ∫ ∂S/∂A along x' → x          (InternalInfluence)
  layer_conductance            ∫ ∂S/∂A dA along x' → x       (LayerConductance)
  layer_integrated_gradients   (A − A') ∫ ∂S/∂A, A' → A      (LayerIntegratedGradients)

A is the output of `layer` (a `cj.models.layer_names` name; None: the last spatial layer),
A' its value on the baseline x'. Each returns (B, h, w, C) for one target per image,
(B, K, h, w, C) for several (every targets.py form; a neuron target must lie above `layer`).
∂S/∂A comes from a forward pass whose layer outputs a given A (`taps.tapping(replace=)`): the
network below the layer is then dead code, which XLA drops under jit (Captum runs it at
every step of LayerIntegratedGradients).
Path rows are processed `chunk` at a time, as Integrated Gradients' (gradients.py).
"""
import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import chunks, gradients, layer_gradients, targets
from cnnviz_jax.models import taps


def _activations(model: nn.Module, variables, z: jax.Array, layer: str) -> jax.Array:
  return taps.apply_with_taps(model, variables, z, [layer])[1][layer]


def _layer_gradients(model: nn.Module, variables, layer: str, forward: Callable,
                     resolved: targets.Resolved, zs: jax.Array, values: jax.Array | None,
                     chunk: int | None) -> tuple[jax.Array, jax.Array]:
  """(∂S/∂A (N, K, h, w, C), A (N, h, w, C)) at rows zs (N, H, W, C) whose scores are
  `forward`'s and targets `resolved`: A the layer's own output on zs, or `values`
  (N, h, w, C) where given."""
  def rows(part_rows):
    z, value, classes = part_rows
    part = resolved if classes is None else dataclasses.replace(resolved, classes=classes)
    value = _activations(model, variables, z, layer) if value is None else value

    def above(a):
      with taps.tapping(replace={layer: a}):
        return forward(z)

    outputs, pull = jax.vjp(above, value)
    return targets.pull_targets(pull, outputs, part), value

  return chunks.unrolled_chunks(rows, (zs, values, resolved.classes), chunk)


def _setup(model: nn.Module, variables, x: jax.Array, layer: str | None, target: Any
           ) -> tuple[str, Callable, targets.Resolved]:
  """The one layer's name, the forward to the target's scores, the targets of the images."""
  if layer is not None and not isinstance(layer, str):
    raise ValueError(f"a layer attribution takes one layer name, got {layer!r}")
  layer = layer_gradients.resolve_layers(model, variables, x, layer)[0]
  targets.check_neuron_above(model, variables, x, target, [layer], "a layer attribution")
  return (layer, *gradients.resolve_on(model, variables, x, target))


def _per_image(values: jax.Array, batch: int) -> jax.Array:
  """(B·S, ...) image-major rows -> (B, S, ...)."""
  return values.reshape(batch, -1, *values.shape[1:])


def _output(attributions: jax.Array, resolved: targets.Resolved) -> jax.Array:
  return attributions if resolved.multi else attributions[:, 0]


def _weighted_sum(grads: jax.Array, weights, dtype) -> jax.Array:
  """Σ_s w_s grads[:, s]: (B, S, K, ...) -> (B, K, ...)."""
  return jnp.einsum("bs...,s->b...", grads, jnp.asarray(weights, dtype))


def layer_gradient_x_activation(model: nn.Module, variables, x: jax.Array,
                                layer: str | None = None, target: Any = None) -> jax.Array:
  """∂S/∂A · A at `layer`: the layer's first-order share of the score.

  Shrikumar et al.'s gradient × input ("Not Just a Black Box: Learning Important Features
  Through Propagating Activation Differences", 2016, arXiv:1605.01713) at an inner layer,
  as Captum's LayerGradientXActivation (multiply_by_inputs=True).
  """
  layer, forward, resolved = _setup(model, variables, x, layer, target)
  grads, acts = _layer_gradients(model, variables, layer, forward, resolved, x, None, None)
  return _output(grads * acts[:, None], resolved)


def internal_influence(model: nn.Module, variables, x: jax.Array, layer: str | None = None,
                       target: Any = None, steps: int = 50, baseline: Any = None, *,
                       method: str = "gausslegendre", blur_sigma: float = 5.0,
                       chunk: int | None = 32) -> jax.Array:
  """∫_0^1 ∂S/∂A (x' + a (x − x')) da: the layer gradient averaged along IG's input path.

  Leino et al., "Influence-Directed Explanations for Deep Convolutional Networks", ITC 2018,
  arXiv:1802.03788; as Captum's InternalInfluence. Quadrature and baselines as
  `integrated_gradients` (`gradients.ig_rule`; Captum's trapezoid weights sum to (n−1)/n,
  ours to 1, so ours × (n−1)/n is Captum's there); Captum's default rule and step count.
  """
  alphas, weights = gradients.ig_rule(method, steps)
  layer, forward, resolved = _setup(model, variables, x, layer, target)
  base = gradients.baseline_like(x, baseline, blur_sigma)
  grads, _ = _layer_gradients(model, variables, layer, forward, resolved.repeat(len(alphas)),
                              gradients.straight_path(base, x, alphas), None, chunk)
  return _output(_weighted_sum(_per_image(grads, x.shape[0]), weights, x.dtype), resolved)


def layer_conductance(model: nn.Module, variables, x: jax.Array, layer: str | None = None,
                      target: Any = None, steps: int = 50, baseline: Any = None, *,
                      method: str = "gausslegendre", blur_sigma: float = 5.0,
                      chunk: int | None = 32) -> jax.Array:
  """Σ_k ∂S/∂A(a_k) · (A(a_{k+1}) − A(a_k)): the flow of IG's total through each unit.

  Dhamdhere et al., "How Important Is a Neuron?", ICLR 2019, arXiv:1805.12233: the path
  integral ∫ ∂S/∂A · dA/da da along the input path x' + a (x − x'), as Captum's
  LayerConductance computes it: a left Riemann–Stieltjes sum over the steps + 1 nodes
  a_0…a_steps of `method`'s rule (its weights unused). Summed over the layer it telescopes
  towards S(x) − S(x') (completeness); exactly so in the limit only where the nodes span
  [0, 1] ('riemann_trapezoid': linspace(0, 1, steps + 1)). Captum's default
  'gausslegendre' nodes stop short of both ends, so the sum misses the path's first and
  last stretch a_0 ≈ 1.4 / steps² (5·10⁻⁴ of it at 50 steps).
  """
  alphas = gradients.ig_rule(method, steps + 1)[0]
  layer, forward, resolved = _setup(model, variables, x, layer, target)
  base = gradients.baseline_like(x, baseline, blur_sigma)
  grads, acts = _layer_gradients(model, variables, layer, forward, resolved.repeat(len(alphas)),
                                 gradients.straight_path(base, x, alphas), None, chunk)
  grads, acts = _per_image(grads, x.shape[0]), _per_image(acts, x.shape[0])
  # Σ over steps as a contraction: a plain sum-reduce here, vmapped over variables, makes
  # jaxlib 0.10.2's YNNPACK reduce fusion (XLA-CPU) corrupt memory (a segfault later on)
  flow = jnp.einsum("bskhwc,bshwc->bkhwc", grads[:, :-1], jnp.diff(acts, axis=1))
  return _output(flow, resolved)


def layer_integrated_gradients(model: nn.Module, variables, x: jax.Array,
                               layer: str | None = None, target: Any = None, steps: int = 50,
                               baseline: Any = None, *, method: str = "gausslegendre",
                               blur_sigma: float = 5.0, chunk: int | None = 32) -> jax.Array:
  """(A − A') · ∫_0^1 ∂S/∂A (A' + a (A − A')) da: IG of the network above the layer.

  Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017,
  arXiv:1703.01365, with the layer's output as the input: the path runs straight between
  the layer's activations A' = A(x') and A = A(x) (not through the activations of the
  scaled inputs, which is what `internal_influence` and `layer_conductance` follow), so
  completeness holds over the layer: Σ ≈ S(x) − S(x'). As Captum's LayerIntegratedGradients
  (which feeds the images themselves below the hooked layer); rules as `internal_influence`.
  """
  alphas, weights = gradients.ig_rule(method, steps)
  layer, forward, resolved = _setup(model, variables, x, layer, target)
  base = gradients.baseline_like(x, baseline, blur_sigma)
  ends = _activations(model, variables, jnp.concatenate([base, x]), layer)
  start, end = ends[:x.shape[0]], ends[x.shape[0]:]
  grads, _ = _layer_gradients(model, variables, layer, forward, resolved.repeat(len(alphas)),
                              jnp.repeat(x, len(alphas), axis=0),
                              gradients.straight_path(start, end, alphas), chunk)
  total = _weighted_sum(_per_image(grads, x.shape[0]), weights, x.dtype)
  return _output(total * (end - start)[:, None], resolved)

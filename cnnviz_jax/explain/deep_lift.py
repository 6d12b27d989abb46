"""DeepLIFT (rescale rule), DeepLiftShap and LayerDeepLift, as Captum 0.9 defines them.

Shrikumar, Greenside & Kundaje, "Learning Important Features Through Propagating Activation
Differences", ICML 2017, arXiv:1704.02685, in the gradient form of Ancona et al., "Towards
better understanding of gradient-based attribution methods for Deep Neural Networks", ICLR
2018, arXiv:1711.06104: the backward pass of `guided.swap(model, rescale, rescale_max_pool)`
(rescale.py) over one batch [x; x'] gives each input its multiplier, and
  attribution = (x − x') · multiplier,   Σ attribution = S(x) − S(x') (summation-to-delta).
Convolutions, dense layers, BatchNorm and average pools are linear: DeepLIFT's linear rule is
their gradient. So are ResNet's residual additions: `x + y` is not a module in torchvision or
here, the gradient passes it unchanged to both branches, as Captum passes it, and the sum
stays exact. Each swapped activation and max-pool applies Captum's rule (rescale.py, which
also says where Captum as shipped departs from its own rules).
Targets: every form of targets.py (a `neuron(layer, channel)` is Captum's NeuronDeepLift);
top-1 is the input's, and the baseline half is seeded with the same target.
"""
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import chunks, gradients, targets
from cnnviz_jax.explain.guided import swap
from cnnviz_jax.explain.rescale import EPS, rescale, rescale_max_pool
from cnnviz_jax.models import taps


def rescaled(model: nn.Module, eps: float = EPS) -> nn.Module:
  """The model with DeepLIFT's rules on every activation and max-pool (a [x; x'] batch)."""
  return swap(model, lambda act: rescale(act, eps), lambda pool: rescale_max_pool(pool, eps))


def _pull_both_halves(pull, outputs: jax.Array, resolved: targets.Resolved) -> jax.Array:
  """(B, K, ...) cotangents of the input half, every target seeded in both halves."""
  half = outputs.shape[0] // 2

  def one(k):
    seed = jnp.concatenate([resolved.cotangent(outputs[:half], k),
                            resolved.cotangent(outputs[half:], k)])
    return pull(seed)[0][:half]

  return jnp.moveaxis(chunks.map_targets(one, resolved.num, None, outputs), 0, 1)


def multipliers(model: nn.Module, variables, x: jax.Array, base: jax.Array, target: Any,
                *, layer: str | None = None, eps: float = EPS,
                resolved: targets.Resolved | None = None
                ) -> tuple[jax.Array, jax.Array, targets.Resolved]:
  """(multipliers (B, K, ...), Δ = x − x' or A(x) − A(x') at `layer`, the targets).

  One forward and backward pass of the rescaled model over [x; x']. resolved: targets bound
  already (DeepLiftShap binds them on the clean images); else bound on the x half.
  """
  forward, target = targets.scores_fn(rescaled(model, eps), variables, target)
  both = jnp.concatenate([x, base])
  if layer is None:
    outputs, pull = jax.vjp(forward, both)
    delta = x - base
  else:
    # the plain model's activations: the same values, and their parameter derivative is
    # the true one (through the rescaled model's rules it would be the rules')
    acts = taps.apply_with_taps(model, variables, both, [layer])[1][layer]

    def from_layer(a):  # the layer's output replaced: back-propagate from there
      with taps.tapping(replace={layer: a}):
        return forward(both)

    outputs, pull = jax.vjp(from_layer, acts)
    delta = acts[:x.shape[0]] - acts[x.shape[0]:]
  if resolved is None:
    resolved = targets.resolve(target, outputs[:x.shape[0]])
  return _pull_both_halves(pull, outputs, resolved), delta, resolved


def _attribute(model, variables, x, base, target, layer, eps) -> jax.Array:
  grads, delta, resolved = multipliers(model, variables, x, base, target, layer=layer, eps=eps)
  attributions = grads * delta[:, None]
  return attributions if resolved.multi else attributions[:, 0]


def deep_lift(model: nn.Module, variables, x: jax.Array, target: Any = None,
              baseline: Any = None, *, eps: float = EPS) -> jax.Array:
  """DeepLIFT's rescale rule: (B, H, W, C), or (B, K, H, W, C) for several targets.

  Captum's DeepLift (multiply_by_inputs=True). baseline x': None/'zeros', 'blur' or an
  array broadcastable to x. eps: |Δin| below it keeps a unit's plain gradient (Captum's).
  """
  base = gradients.baseline_like(x, baseline)
  return _attribute(model, variables, x, base, target, None, eps)


def layer_deep_lift(model: nn.Module, variables, x: jax.Array, layer: str, target: Any = None,
                    baseline: Any = None, *, eps: float = EPS) -> jax.Array:
  """DeepLIFT of a layer's units: (A(x) − A(x')) · multiplier, (B, h, w, C) (or (B, K, …)).

  Captum's LayerDeepLift (attribute_to_layer_input=False): only the rules above the layer
  take part; the sum over the layer's units is S(x) − S(x'). `layer`: a tap
  (`cj.models.layer_names`).
  """
  taps.check_layers(model, variables, jax.ShapeDtypeStruct(x.shape, x.dtype), [layer])
  base = gradients.baseline_like(x, baseline)
  return _attribute(model, variables, x, base, target, layer, eps)


def deep_lift_shap(model: nn.Module, variables, x: jax.Array, target: Any = None,
                   baselines: Any = None, *, eps: float = EPS,
                   chunk: int | None = 32) -> jax.Array:
  """DeepLiftShap: the mean of DeepLIFT over a distribution of baselines (N, H, W, C).

  Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
  arXiv:1705.07874. Captum's DeepLiftShap: every image against every baseline (B·N pairs,
  image-major), averaged; None: one black image. Targets are bound on the clean images;
  `chunk` pairs at a time. Σ attribution = S(x) − mean S(x').
  """
  if baselines is None:
    baselines = jnp.zeros((1, *x.shape[1:]), x.dtype)
  baselines = jnp.asarray(baselines, x.dtype)
  if baselines.ndim != x.ndim or baselines.shape[1:] != x.shape[1:]:
    raise ValueError(f"baselines must be a distribution (N, {', '.join(map(str, x.shape[1:]))})"
                     f" for x {x.shape}, got {baselines.shape}")
  n = baselines.shape[0]
  _, resolved = gradients.resolve_on(model, variables, x, target)
  xs = jnp.repeat(x, n, axis=0)  # (B·N, ...): image b against baseline j at row b·N + j
  bases = jnp.tile(baselines, (x.shape[0],) + (1,) * (x.ndim - 1))
  rows_resolved = resolved.repeat(n)

  def pairs(part):
    rows, base, classes = part
    bound = rows_resolved if classes is None else dataclasses.replace(rows_resolved,
                                                                      classes=classes)
    grads, delta, _ = multipliers(model, variables, rows, base, target, eps=eps,
                                  resolved=bound)
    return grads * delta[:, None]

  attributions = chunks.unrolled_chunks(pairs, (xs, bases, rows_resolved.classes), chunk)
  attributions = jnp.mean(attributions.reshape(x.shape[0], n, *attributions.shape[1:]), axis=1)
  return attributions if resolved.multi else attributions[:, 0]


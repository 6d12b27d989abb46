"""LRP's rules as custom VJPs: an activation rule (the `act` swap) and layer rules (a flax
method interceptor on each conv, dense and BatchNorm layer).

The backward pass carries the relevance per unit of activation, u = R / a, so that rules
act on one side of a layer and nothing needs to know a tensor's other consumers. With
R_z = z ⊙ u_z, the rule R_a = a ⊙ Jᵀ(R_z / (z + ε·sign z)) becomes
  layer:       u_a = J_ruleᵀ (u_z ⊙ z / (z_rule + ε·sign z_rule))
  activation:  R_in = R_out, so u_in = (act(x) / x) ⊙ u_out   (ReLU: its gradient)
and the input relevance is x ⊙ u_x, seeded u = 1 at the target (R = the score). ε rule:
J_rule = J and z_rule = z, so a layer only scales its output's cotangent by z / (z + ε·sign z)
(an identity with a custom VJP on the layer's output); the γ and α1β0 rules back-propagate
through the layer with modified weights (a custom VJP on the layer: output, input and
variables, the modified layer applied in the backward pass). The interceptor wraps the
layers; the activation and max-pool swap is `guided.swap`'s, as guided backprop and DeepLIFT
use it (max-pools get Captum's default ε rule for them: `relevance_max_pool`).

Rules as Captum's (captum/attr/_utils/lrp_rules.py): EpsilonRule (ε = 1e-9 by default),
GammaRule (W + γW⁺, γ = 0.25), Alpha1_Beta0_Rule (W⁺); both keep the bias unless zero_bias,
and stabilize with 1e-9. Weights are `kernel` (conv, dense) and `scale` (BatchNorm).
"""
import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.models import layers

NAMES = ("epsilon", "gamma", "alpha1_beta0")
STABILIZER = 1e-9  # Captum's PropagationRule.STABILITY_FACTOR (all rules but ε's own)
RULED = (nn.Conv, nn.Dense, nn.BatchNorm, layers.DepthwiseConv)


@dataclasses.dataclass(frozen=True)
class Rule:
  name: str = "epsilon"
  epsilon: float = 1e-9
  gamma: float = 0.25
  zero_bias: bool = False

  def __post_init__(self):
    if self.name not in NAMES:
      raise ValueError(f"unknown LRP rule {self.name!r}; valid: {', '.join(NAMES)}")


def _stabilized(z: jax.Array, eps: float) -> jax.Array:
  return z + eps * jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)  # Captum: sign(0) = 1


@functools.lru_cache(maxsize=None)  # one function per act: cloned models stay equal
def relevance_act(act: Callable) -> Callable:
  """`act` passing relevance through unchanged: u_in = act(x) / x · u_out (0 where x = 0)."""
  @jax.custom_vjp
  def f(x):
    return act(x)

  def fwd(x):
    y = act(x)
    return y, (x, y)

  def bwd(residuals, u):
    x, y = residuals
    zero = x == 0
    return (jnp.where(zero, 0, u * y / jnp.where(zero, 1, x)),)

  f.defvjp(fwd, bwd)
  return f


@functools.lru_cache(maxsize=None)
def _epsilon(eps: float) -> Callable:
  """Identity on a layer's output z; its cotangent scaled by z / (z + ε·sign z)."""
  @jax.custom_vjp
  def f(z):
    return z

  f.defvjp(lambda z: (z, z), lambda z, u: (u * z / _stabilized(z, eps),))
  return f


@functools.lru_cache(maxsize=None)
def relevance_max_pool(pool: Callable, eps: float = STABILIZER) -> Callable:
  """`pool(x, window, stride, padding)` with Captum's default rule for its max-pool modules:
  ε (1e-9) on the pool's output, the pool's gradient (to each window's maximum) below."""
  def f(x, window, stride, padding=((0, 0), (0, 0))):
    return _epsilon(eps)(pool(x, window, stride, padding))
  return f


def _rule_variables(variables, rule: Rule):
  """The weights the γ / α1β0 rule back-propagates through (Captum's _manipulate_weights)."""
  params = dict(variables["params"])
  name = "scale" if "scale" in params else "kernel"
  if name in params:
    w = params[name]
    params[name] = (w + rule.gamma * jnp.maximum(w, 0) if rule.name == "gamma"
                    else jnp.maximum(w, 0))
  if rule.zero_bias and "bias" in params:
    params["bias"] = jnp.zeros_like(params["bias"])
  return {**variables, "params": params}


_applying = [False]  # the backward pass's own layer applications are not intercepted


def _modified(rule: Rule, module: nn.Module, kwargs) -> Callable:
  """(variables, a, z) -> z, whose VJP sends u_z through the rule's modified layer to a."""
  layer = module.clone(parent=None)

  def apply(variables, a):
    _applying[0] = True
    try:
      return layer.apply(variables, a, **kwargs)
    finally:
      _applying[0] = False

  @jax.custom_vjp
  def f(variables, a, z):
    del variables, a
    return z

  def bwd(residuals, u):
    variables, a, z = residuals
    z_rule, pull = jax.vjp(lambda t: apply(_rule_variables(variables, rule), t), a)
    u_a = pull(u * z / _stabilized(z_rule, STABILIZER))[0]
    return jax.tree.map(jnp.zeros_like, variables), u_a, jnp.zeros_like(z)

  f.defvjp(lambda variables, a, z: (z, (variables, a, z)), bwd)
  return f


def interceptor(rule_of: Callable[[str, nn.Module], Rule]):
  """A flax method interceptor applying rule_of(layer path 'a/b/conv1', layer) to every conv,
  dense and BatchNorm layer's output."""
  def intercept(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name != "__call__" or not isinstance(module, RULED) or _applying[0]:
      return next_fun(*args, **kwargs)
    z = next_fun(*args, **kwargs)
    rule = rule_of("/".join(module.path), module)
    if rule.name == "epsilon":
      return _epsilon(rule.epsilon)(z)
    return _modified(rule, module, kwargs)(module.variables, args[0], z)
  return intercept

"""Model-randomization sanity check: does the map change when the weights it explains do?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018 (arXiv:1810.03292), section 3. Layers are re-initialized from the top
(logits) down, cumulatively ('cascading') or one at a time ('independent'), and each map
is compared with the trained model's by Spearman rank correlation. A method whose maps
stay correlated (the paper's finding for guided backprop) does not depend on the weights.
All randomized models are explained in one vmapped call over stacked variables.
"""
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import maps
from cnnviz_jax.models.initialize import initialize
from cnnviz_jax.models.taps import parameter_layers

Explainer = Callable[..., jax.Array]  # (model, variables, x, target=...) -> (B, ...) maps


class RandomizationCheck(flax.struct.PyTreeNode):
  """A pytree whose layer names are static, so jit / vmap can return it.

  Spearman correlations are of ranks: piecewise constant in the parameters, so their
  gradient is zero wherever it exists; `maps` and `original` are differentiable.
  """
  layers: tuple[str, ...] = flax.struct.field(pytree_node=False)  # row i: the model with
  # layers[:i + 1] (cascading) or layers[i] random
  spearman: Any  # (L, B) rank correlation with the trained model's map, per image
  maps: Any  # (L, B, ...) the randomized models' maps
  original: Any  # (B, ...) the trained model's map (each a dict for a dict explainer)


def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
  """Spearman rank correlation of (..., N) vectors along the last axis (average ranks for ties)."""
  def ranks(v):
    s = jnp.sort(v, -1)
    lo = jax.vmap(jnp.searchsorted)(s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1]))
    hi = jax.vmap(lambda x, y: jnp.searchsorted(x, y, side="right"))(
        s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1]))
    return ((lo + hi - 1) / 2).reshape(v.shape)
  ra, rb = ranks(maps.at_least_float32(a)), ranks(maps.at_least_float32(b))
  ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
  denom = jnp.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
  return jnp.where(denom > 0, (ra * rb).sum(-1) / jnp.where(denom > 0, denom, 1.0), 0.0)


def _fast_key(key: jax.Array) -> jax.Array:
  """An RBG key holding `key`'s bits: `model.init` with a threefry key takes ~10-20 s to
  compile on a CPU (the RNG is unrolled per parameter), with an RBG key a few seconds."""
  typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  if typed and str(jax.random.key_impl(key)) == str(jax.random.key_impl(
      jax.random.key(0, impl="rbg"))):
    return key
  data = (jax.random.key_data(key) if typed else key).reshape(-1).astype(jnp.uint32)
  return jax.random.wrap_key_data(jnp.resize(data, 4), impl="rbg")


def randomized_variables(model: nn.Module, variables, x: jax.Array, key: jax.Array,
                         mode: str = "cascading") -> tuple[list[str], Any]:
  """(layers top-down, variables stacked on a new leading axis, one model per layer).

  A randomized layer gets a fresh `model.init` draw of all its collections (weights from
  the initializer, BatchNorm statistics reset), as in Adebayo et al.
  """
  if mode not in ("cascading", "independent"):
    raise ValueError(f"unknown mode {mode!r}; valid modes: 'cascading', 'independent'")
  layers = parameter_layers(model, variables, x)[::-1]
  fresh = initialize(model, _fast_key(key), jnp.zeros((1,) + x.shape[1:], x.dtype))
  models = []
  for i in range(len(layers)):
    chosen = set(layers[:i + 1]) if mode == "cascading" else {layers[i]}
    models.append({col: {name: (fresh[col][name] if name in chosen and name in fresh[col]
                                else tree) for name, tree in trees.items()}
                   for col, trees in variables.items()})
  return layers, jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *models)


def randomization_check(model: nn.Module, variables, x: jax.Array, explainer: Explainer,
                        target: Any = None, *, key: jax.Array | None = None,
                        mode: str = "cascading", absolute: bool = True,
                        chunk: int | None = None) -> RandomizationCheck:
  """Maps of `explainer` for models randomized layer by layer, vs the trained model's.

  explainer(model, variables, x, target=...) -> (B, h, w) or (B, H, W, C) maps, e.g.
  `functools.partial(grad_cam, layer='block4_conv1')` or `guided_backprop`; or an
  explainer that returns a dict of such maps (several methods checked on the same
  randomized models in one program: then `spearman`, `maps` and `original` are dicts alike). target: None fixes each image's
  top-1 class of the trained model, so every model explains the same class. absolute:
  compare |map| (channels summed), the paper's main setting. chunk: models explained per
  vmapped call (None: all at once; 1 compiles fastest). key: the re-initialization draw.
  Jits, vmaps and shards (the layer names are static fields of the result); the Spearman
  correlations have a zero parameter gradient (see RandomizationCheck).
  """
  key = jax.random.key(0) if key is None else key
  layers, stacked = randomized_variables(model, variables, x, key, mode)

  @jax.jit
  def explain_all(variables, stacked, x, target):  # one compiled program for every model
    if target is None:
      target = jnp.argmax(model.apply(variables, x, train=False), -1)
    explain = lambda v: explainer(model, v, x, target=target)
    # chunk 1: a plain loop, not a vmap of 1 (vmapped weights compile to slower convolutions)
    batch = None if chunk == 1 else chunk or len(layers)
    original, randomized = explain(variables), jax.lax.map(explain, stacked, batch_size=batch)

    def flat(m, ndim):  # (..., B, H, W[, C]) -> (..., B, H*W)
      if ndim == 4:
        m = maps.attribution_map(m, absolute)
      elif absolute:
        m = jnp.abs(m)
      return m.reshape(m.shape[:-2] + (-1,))

    rho = jax.tree.map(lambda r, o: spearman(flat(r, o.ndim), flat(o, o.ndim)[None]),
                       randomized, original)
    return rho, randomized, original

  return RandomizationCheck(tuple(layers), *explain_all(variables, stacked, x, target))

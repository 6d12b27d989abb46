"""Testing with Concept Activation Vectors: is a class's score sensitive to a human concept?

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas & Sayres, "Interpretability Beyond Feature
Attribution: Quantitative Testing with Concept Activation Vectors (TCAV)", ICML 2018
(arXiv:1711.11279). A concept is a set of example images; its CAV at a layer is the normal
of a linear classifier separating the concept's activations from those of random images
(cav.py: Captum's default SGD linear SVM). The TCAV score of the CAV for a class is the
fraction of the class's inputs whose score's directional derivative along the CAV is
positive; Captum adds the "magnitude", the mean directional derivative. One CAV is noise:
the concept is trained against R random sets, R random CAVs (random set 0 against random
set i) give the scores of no concept, and a two-sided t-test between the two score samples
says whether the concept matters (the paper's section 3.2; Captum's tutorial does the same
with scipy.stats.ttest_ind).

As captum.concept.TCAV with its defaults: layer gradients of the raw target output (its
LayerGradientXActivation with multiply_by_inputs=False), CAV rows pointing to the concept
(its weights for the concept's class), activations flattened per example. Ours are NHWC,
Captum's NCHW: the same vectors up to a permutation of the features, which neither the SVM
nor the dot products see.
"""
import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax.explain import cav, layer_gradients, maps, targets
from cnnviz_jax.models import taps


class TCAV(NamedTuple):
  sign_count: jax.Array  # (R,) TCAV scores of the concept's CAVs (one per random set)
  magnitude: jax.Array  # (R,) mean directional derivative along them
  random_sign_count: jax.Array  # (R,) the same for random set 0 against random set i
  random_magnitude: jax.Array  # (R,)
  accuracy: jax.Array  # (R,) held-out accuracy of the concept's classifiers
  random_accuracy: jax.Array  # (R,)
  p_value: jax.Array  # () two-sided t-test, sign_count against random_sign_count
  cavs: jax.Array  # (R, h, w, C) the concept's CAVs


@dataclasses.dataclass(frozen=True)
class _Shifted:
  """`model` with `delta` added to the output of its layer `layer`: the model that
  `targets.scores_fn` runs, so every target form reads the network above the layer."""
  model: nn.Module
  layer: str
  delta: jax.Array

  def apply(self, variables, z, *, train: bool = False, **kwargs):
    return taps.apply_with_taps(self.model, variables, z, (), {self.layer: self.delta},
                                train=train, **kwargs)[0]


def layer_gradient(model: nn.Module, variables, x: jax.Array, layer: str, target: Any
                   ) -> jax.Array:
  """(B, h, w, C): d(target score) / d(output of `layer`) at x, one target per image."""
  shape = jax.eval_shape(lambda z: taps.apply_with_taps(model, variables, z, [layer])[1][layer],
                         jax.ShapeDtypeStruct(x.shape, x.dtype))
  delta = jnp.zeros(shape.shape, shape.dtype)

  def scores(d):
    forward, bound = targets.scores_fn(_Shifted(model, layer, d), variables, target)
    outputs = forward(x)
    resolved = targets.resolve(bound, outputs)
    if resolved.num != 1:
      raise ValueError("tcav explains one target per image; got several")
    return jnp.sum(resolved.scores(outputs))

  return jax.grad(scores)(delta)


def _activations(model: nn.Module, variables, images: jax.Array, layer: str, chunk: int):
  """(N, D) flattened activations of `layer`, `chunk` images per forward pass."""
  acts = jax.lax.map(lambda z: taps.apply_with_taps(model, variables, z[None], [layer])[1][
      layer][0], images, batch_size=chunk)
  return maps.at_least_float32(acts.reshape(acts.shape[0], -1))


def _scores(gradients: jax.Array, features_a: jax.Array, randoms: jax.Array, key: jax.Array,
            fit: dict):
  """CAVs of set a (Na, D) against each random set (R, Nr, D), and their TCAV scores."""
  labels = jnp.concatenate([jnp.ones(features_a.shape[0]), -jnp.ones(randoms.shape[1])])

  def one(others, k):
    result, accuracy = cav.split_fit(jnp.concatenate([features_a, others]), labels, k, **fit)
    derivatives = gradients @ result.weights
    return jnp.mean(derivatives > 0), jnp.mean(derivatives), accuracy, result.weights

  return jax.vmap(one)(randoms, jax.random.split(key, randoms.shape[0]))


def tcav(model: nn.Module, variables, x: jax.Array, layer: str | None, concept: jax.Array,
         randoms: jax.Array, target: Any = None, *, key: jax.Array | None = None,
         test_fraction: float = 0.33, alpha: float = 0.01, tol: float = 1e-3,
         max_epochs: int = 1000, patience: int = 5, chunk: int = 64) -> TCAV:
  """TCAV of `concept` for the target of images x (B, H, W, C), at `layer` (None: the last
  spatial layer); see the module doc.

  concept: (Nc, H, W, C) example images of the concept; randoms: (R + 1, Nr, H, W, C) random
  image sets (R ≥ 2; the paper and the tests use R ≥ 10): the concept is trained against sets
  1…R, random set 0 against sets 1…R. target: every targets.py form with one target per
  image (None: each image's top-1 class). key: the splits and SGD orders (None: key 0);
  alpha, tol, max_epochs, patience: the SVM's (cav.linear_svm; Captum's defaults).
  Activations are computed `chunk` images at a time. Not differentiable in the parameters:
  the scores count signs, and the CAVs are fits held fixed (stop_gradient) under jax.grad.
  """
  layer = layer_gradients.resolve_layers(model, variables, x, layer)[0]
  key = jax.random.key(0) if key is None else key
  fit = dict(test_fraction=test_fraction, alpha=alpha, tol=tol, max_epochs=max_epochs,
             patience=patience)
  grads = layer_gradient(model, variables, x, layer, target)
  gradients = maps.at_least_float32(grads.reshape(x.shape[0], -1))
  count, size = randoms.shape[:2]
  features = jax.lax.stop_gradient(_activations(
      model, variables, jnp.concatenate([concept, randoms.reshape(-1, *randoms.shape[2:])]),
      layer, chunk))
  concept_features = features[:concept.shape[0]]
  random_features = features[concept.shape[0]:].reshape(count, size, -1)
  concept_key, random_key = jax.random.split(key)
  sign, magnitude, accuracy, cavs = _scores(gradients, concept_features, random_features[1:],
                                            concept_key, fit)
  random_sign, random_magnitude, random_accuracy, _ = _scores(
      gradients, random_features[0], random_features[1:], random_key, fit)
  p_value = cav.t_test(sign, random_sign)[1]
  return TCAV(sign, magnitude, random_sign, random_magnitude, accuracy, random_accuracy,
              p_value, cavs.reshape(-1, *grads.shape[1:]))

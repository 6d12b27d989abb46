"""Every explainer `cnnviz_jax.explain` exports, as a call on a tiny net, for the contract tests.

Shared by test_contract.py and its 8-device subprocess (contract_sharded.py). Each method:
  call(model, variables, x) -> output pytree; `x` is (B, 16, 16, 3), B divisible by 8;
  batched: the output's leading axis follows x's (shard it) — else it has no batch axis;
  uses_variables: a function of the variables (vmap over an ensemble applies);
  differentiable(out) -> the outputs that are differentiable in the parameters, or None
  where the method is not (its docstring says so, and test_contract pins it).
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import cnnviz_jax as cj

E = cj.explain
LAYER = "block3_conv1"  # 4×4 at 16 px: small maps, every method has something to do
SIZE, BATCH, CLASSES = 16, 8, 4


@dataclasses.dataclass(frozen=True)
class Method:
  call: Callable[..., Any]
  batched: bool = True
  uses_variables: bool = True
  differentiable: Callable[[Any], Any] | None = lambda out: out


def tiny_model(dtype=jnp.float32):
  return cj.models.create("small_cnn_bn", num_classes=CLASSES, filters=(4, 8, 8, 8), dtype=dtype)


def tiny_variables(model, seed: int, x):
  """Random weights and random BN statistics (eval-mode BN is then not the identity)."""
  variables = cj.models.initialize(model, jax.random.key(seed), x)
  rng = np.random.RandomState(seed + 100)
  return jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.asarray(rng.uniform(0.5, 2, v.shape), v.dtype)
      if "var" in jax.tree_util.keystr(path) else (
          jnp.asarray(rng.uniform(-0.1, 0.1, v.shape), v.dtype)
          if "mean" in jax.tree_util.keystr(path) else v), variables)


def images(seed: int = 0, batch: int = BATCH):
  return jnp.asarray(np.random.RandomState(seed).rand(batch, SIZE, SIZE, 3), jnp.float32)


def fixed_saliency(x):  # (B, 4, 4) >= 0: a map of the images, not of the parameters
  return x[:, ::4, ::4, 0] + x[:, 1::4, 2::4, 1]


def fixed_masks(x):  # (B, 16, 16) in {0, 1}, from the images (so it shards with them)
  return (x[..., 2] > 0.5).astype(x.dtype)


def _cam(fn, **kw):
  return Method(lambda m, v, x: fn(m, v, x, LAYER, **kw))


METHODS = {
    "activations": Method(lambda m, v, x: E.activations(m, v, x, ["block2", LAYER])),
    "filters": Method(lambda m, v, x: E.filters(m, v, x, "block2_conv1"), batched=False),
    "grad_cam": _cam(E.grad_cam),
    "grad_cam_plus_plus": _cam(E.grad_cam_plus_plus),
    "xgrad_cam": _cam(E.xgrad_cam),
    "layer_cam": _cam(E.layer_cam, target=E.neuron("block4_conv1", 4)),  # a neuron above
    "eigen_cam": _cam(E.eigen_cam),
    "guided_grad_cam": _cam(E.guided_grad_cam),
    "hires_cam": _cam(E.hires_cam),
    "grad_cam_elementwise": _cam(E.grad_cam_elementwise),
    "eigen_grad_cam": _cam(E.eigen_grad_cam),
    "kpca_cam": _cam(E.kpca_cam),
    "fem": _cam(E.fem, k=1.0),  # 4×4 maps: k=2 could leave nothing above the threshold
    "shapley_cam": _cam(E.shapley_cam,  # ReST: a score whose Hessian does not vanish
                        target=lambda o: o[:, 1] + jax.nn.log_softmax(o)[:, 1]),
    "finer_cam": _cam(E.finer_cam),
    "random_cam": _cam(E.random_cam, key=jax.random.key(0)),
    "score_cam": Method(lambda m, v, x: E.score_cam(m, v, x, LAYER, chunk=4)),
    "ablation_cam": Method(lambda m, v, x: E.ablation_cam(m, v, x, LAYER, chunk=4)),
    "full_grad": Method(lambda m, v, x: E.full_grad(m, v, x)),
    "gradient": Method(lambda m, v, x: E.gradient(m, v, x)),
    "gradient_x_input": Method(lambda m, v, x: E.gradient_x_input(m, v, x, target=[0, 2])),
    "smoothgrad": Method(lambda m, v, x: E.smoothgrad(m, v, x, samples=2, chunk=None)),
    "integrated_gradients": Method(lambda m, v, x: E.integrated_gradients(m, v, x, steps=3)),
    "layer_gradient_x_activation": Method(
        lambda m, v, x: E.layer_gradient_x_activation(m, v, x, LAYER, target=[0, 2])),
    "internal_influence": Method(lambda m, v, x: E.internal_influence(m, v, x, LAYER, steps=2)),
    "layer_conductance": Method(  # a neuron above the layer as the target
        lambda m, v, x: E.layer_conductance(m, v, x, LAYER, E.neuron("block4_conv1", 4), steps=2)),
    "layer_integrated_gradients": Method(
        lambda m, v, x: E.layer_integrated_gradients(m, v, x, LAYER, steps=3, chunk=10)),
    "guided_backprop": Method(lambda m, v, x: E.guided_backprop(m, v, x)),
    "deconvnet": Method(lambda m, v, x: E.deconvnet(m, v, x, target=1)),
    "deep_lift": Method(lambda m, v, x: E.deep_lift(m, v, x, target=[0, 2], baseline=0.5 - x)),
    "deep_lift_shap": Method(lambda m, v, x: E.deep_lift_shap(
        m, v, x, baselines=jnp.stack([0.2 * x[0], 0.5 - x[1]]), chunk=10)),
    "layer_deep_lift": Method(lambda m, v, x: E.layer_deep_lift(m, v, x, "block2", baseline=0.5)),
    "gradient_shap": Method(lambda m, v, x: E.gradient_shap(
        m, v, x, baselines=jnp.stack([0.2 * x[0], 0.5 - x[1]]), samples=2, stdev=0.1)),
    "lrp": Method(lambda m, v, x: E.lrp(m, v, x, target=[0, 2], rule=lambda path: (
        "gamma" if "block1" in path else "alpha1_beta0" if "block2" in path else "epsilon"))),
    "occlusion": Method(lambda m, v, x: E.occlusion(m, v, x, window=8, stride=4, chunk=4)),
    "feature_ablation": Method(lambda m, v, x: E.feature_ablation(
        m, v, x, segments=E.grid_segments(x.shape, 2), baseline=0.5, chunk=3)),
    "shapley_value_sampling": Method(lambda m, v, x: E.shapley_value_sampling(
        m, v, x, target=[0, 2], segments=E.grid_segments(x.shape, 2), samples=2, chunk=3)),
    "kernel_shap": Method(lambda m, v, x: E.kernel_shap(
        m, v, x, segments=E.grid_segments(x.shape, 2), samples=6, chunk=4)),
    "lime": Method(lambda m, v, x: E.lime(m, v, x, segments=E.grid_segments(x.shape, 2),
                                          samples=8, sweeps=20, chunk=4)),
    "deletion_insertion": Method(
        lambda m, v, x: E.deletion_insertion(m, v, x, fixed_saliency(x), steps=4)),
    "road": Method(lambda m, v, x: E.road(m, v, x, fixed_saliency(x), percentiles=(30, 70),
                                          key=jax.random.key(0), chunk=2)),
    "confidence_change": Method(
        lambda m, v, x: E.confidence_change(m, v, x, fixed_saliency(x) / 2, target=[0, 2]),
        differentiable=lambda out: (out.change, out.drop)),  # `increase` is a step
    "infidelity": Method(lambda m, v, x: E.infidelity(m, v, x, 0.1 * x, samples=2, chunk=8,
                                                      key=jax.random.key(0))),
    "sensitivity_max": Method(lambda m, v, x: E.sensitivity_max(
        m, v, x, E.gradient, target=1, samples=2, key=jax.random.key(0))),
    "tcav": Method(lambda m, v, x: E.tcav(m, v, x[:4], LAYER, x[4:] + 0.5,
                                          jnp.stack([x[4:], x[:4], x[2:6]]), target=1,
                                          max_epochs=20),
                   batched=False, differentiable=None),  # a sign count; CAVs held fixed
    "max_activating_patches": Method(
        lambda m, v, x: E.max_activating_patches(m, v, x, "block2", [0, 3], k=3, batch_size=4),
        batched=False, differentiable=lambda out: out.activations),
    "activation_maximization": Method(
        lambda m, v, x: E.activation_maximization(m, v, LAYER, [0, 1], size=SIZE, steps=3,
                                                  parametrization="pixel"),
        batched=False, differentiable=None),  # see test_activation_maximization_*
    "randomization_check": Method(
        lambda m, v, x: E.randomization_check(m, v, x, E.gradient),
        differentiable=lambda out: (out.maps, out.original)),
    "mass_inside": Method(lambda m, v, x: E.mass_inside(fixed_saliency(x), fixed_masks(x)),
                          uses_variables=False, differentiable=None),
    "pointing_game": Method(lambda m, v, x: E.pointing_game(fixed_saliency(x), fixed_masks(x),
                                                            tolerance=1.0),
                            uses_variables=False, differentiable=None),
    "receptive_field": Method(lambda m, v, x: E.receptive_field(m, LAYER), batched=False,
                              uses_variables=False, differentiable=None),
}
# What `cj.explain` exports besides explainers: activation rules, layer plumbing, map
# helpers and target forms (covered by their own tests).
HELPERS = {"deconv", "guided", "guided_relu", "layer_vjp", "resolve_layers", "gaussian_blur",
           "normalize", "upsample", "top_k", "neuron", "receptive_fields",
           "grid_segments"}


def leading_batch(out) -> list:
  """The array leaves of an output (NamedTuples and dicts flattened; ints dropped)."""
  return [a for a in jax.tree.leaves(out) if isinstance(a, jax.Array)]

"""Explainers as pure functions of (model, variables, x, ...): jit-able, batched, shardable.

  cj.explain.grad_cam(model, variables, x, layer=None, target=None) -> (B, h, w) >= 0
Targets (targets.py): None (top-1), an int, per-image ints, a list / top_k(k) / 'all' for
several maps from one forward pass, or a score function. Layers: `cj.models.layer_names`.
"""
from cnnviz_jax.explain.activations import activations
from cnnviz_jax.explain.ablation_cam import ablation_cam
from cnnviz_jax.explain.cam_methods import (eigen_grad_cam, fem, finer_cam, grad_cam_elementwise,
                                            hires_cam, random_cam, shapley_cam)
from cnnviz_jax.explain.filters import filters
from cnnviz_jax.explain.deep_lift import deep_lift, deep_lift_shap, layer_deep_lift
from cnnviz_jax.explain.gradient_shap import gradient_shap
from cnnviz_jax.explain.lrp import lrp
from cnnviz_jax.explain.full_grad import full_grad
from cnnviz_jax.explain.grad_cam import (eigen_cam, grad_cam, grad_cam_plus_plus,
                                         guided_grad_cam, layer_cam, xgrad_cam)
from cnnviz_jax.explain.gradients import (gradient, gradient_x_input, integrated_gradients,
                                          smoothgrad)
from cnnviz_jax.explain.guided import deconv, deconvnet, guided, guided_backprop, guided_relu
from cnnviz_jax.explain.kernel_pca import kpca_cam
from cnnviz_jax.explain.layer_attribution import (internal_influence, layer_conductance,
                                                  layer_gradient_x_activation,
                                                  layer_integrated_gradients)
from cnnviz_jax.explain.layer_gradients import layer_vjp, resolve_layers
from cnnviz_jax.explain.maps import gaussian_blur, normalize, upsample
from cnnviz_jax.explain.mask_mass import mass_inside
from cnnviz_jax.explain.score_cam import score_cam
from cnnviz_jax.explain.perturbation import feature_ablation, grid_segments, occlusion
from cnnviz_jax.explain.shapley import shapley_value_sampling
from cnnviz_jax.explain.surrogate import kernel_shap, lime
from cnnviz_jax.explain.targets import neuron, top_k
from cnnviz_jax.explain.faithfulness import deletion_insertion
from cnnviz_jax.explain.road import confidence_change, road
from cnnviz_jax.explain.robustness import infidelity, sensitivity_max
from cnnviz_jax.explain.tcav import tcav
from cnnviz_jax.explain.feature_vis import activation_maximization
from cnnviz_jax.explain.patches import max_activating_patches
from cnnviz_jax.explain.pointing_game import pointing_game
from cnnviz_jax.explain.receptive_field import receptive_field, receptive_fields
from cnnviz_jax.explain.sanity import randomization_check

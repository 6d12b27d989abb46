"""Right for the right reasons: a training penalty on the explanation where it must not be.

Ross, Hughes & Doshi-Velez, "Right for the Right Reasons: Training Differentiable Models by
Constraining their Explanations", IJCAI 2017 (arXiv:1703.03717), eq. 1:
  L = CE + λ Σ_d (A_d ∂/∂x_d Σ_k log p_k)²,   A = 1 where the input should not matter.
`config.explanation_loss = dict(kind=…, weight=λ, layer=…, target=…, region=…)`; kind ""
is off. The penalized region A (B, H, W) comes from the batches, by `region`:
  "outside_object"  A = 1 − object_mask: everything but the object, its outline included;
  "annotated"       A = ignore_mask: what the data marks as not to matter (Ross et al.'s
                    annotation: the decoy shapes' and decoy digits' patch, an image folder's
                    cat/001.ignore.png), everything else unconstrained.
Per image, one definition for both:
  input kinds  (input_gradient, gradient_x_input, integrated_gradients): Σ_{h,w,c}
               (A_hw a_hwc)², the paper's term (a = the attribution; with target
               'log_prob_sum' exactly eq. 1);
               normalize=True: (Σ A a² / Σ a²)², the squared share of the attribution
               energy in A — scale-free like the CAM kinds', so the model cannot lower it
               by flattening its input gradients everywhere (see configs/right_reasons.py);
  CAM kinds    (grad_cam, grad_cam_plus_plus, xgrad_cam, layer_cam), maps at `layer`'s
               resolution (h, w): (share of the map's mass in A)² = (1 − mass_inside(cam,
               1 − A))², the mask area-averaged to (h, w) (explain.mass_inside). Normalized by
               the map's own mass, so shrinking every activation cannot lower it, and a map
               with no mass counts as all in A.
The batch's term is the mean over its real examples (Ross et al. sum both the cross-entropy
and the penalty over the batch; averaging both keeps λ independent of the batch size and
equal to theirs), times λ.
Targets: 'label' (the labeled class's logit), 'predicted' (top-1), 'log_prob_sum'
(Σ_k log p_k, Ross et al.'s choice), 'each_log_prob' (input kinds: one attribution per class
k of log p_k, their energies summed, so no class's probability may move with A; a single
score leaves the others free: with 'label', the other logits can carry the shortcut),
'each_log_prob_sampled' (input kinds: Σ_k s_k log p_k with fresh random signs s_k = ±1 per
image and step; E_s (Σ_k s_k a_k)² = Σ_k a_k², so its energy is an unbiased estimate of
each_log_prob's (Hutchinson's trace estimator) at one gradient's cost instead of K).
The explainers are the library's own (cj.explain), on the function the cross-entropy trains:
no dropout, and BatchNorm normalizing with the real batch's statistics, recorded by one
forward pass and held constant (the running ones with freeze_bn). So each image's
explanation is its own. The gradient of the batch's summed score through the statistics
also carries every other image's loss, and BatchNorm's backward removes the batch mean of the
gradient flowing into it: a network can cancel the part all images share, and on the decoy
shapes it did, keeping a patch gradient far below its images' own (configs/right_reasons.py).
Running statistics, during training, would constrain a function the cross-entropy does not
train. integrated_gradients is Sundararajan et al.'s path integral from the black image
sampled at one uniform α per image and step, x · ∇S(αx) (unbiased, one gradient per step:
Erion et al. 2021's expected gradients with a black baseline; a fixed quadrature can be gamed
between its nodes), every point normalized with the batch's statistics (the scaled batch's
own would normalize α away).
A penalty moves the explanation it sees, not necessarily the model's reasons: evaluate on
test data without the shortcut (configs/right_reasons.py has the measured outcomes).
"""
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnviz_jax import explain
from cnnviz_jax.errors import ConfigError, check_fields, check_one_of
from cnnviz_jax.models import abstract_variables, taps
from cnnviz_jax.train import steps

INPUT_KINDS = {"input_gradient": explain.gradient, "gradient_x_input": explain.gradient_x_input,
               "integrated_gradients": None}  # sampled: see _sampled_integrated_gradients
CAM_KINDS = {"grad_cam": explain.grad_cam, "grad_cam_plus_plus": explain.grad_cam_plus_plus,
             "xgrad_cam": explain.xgrad_cam, "layer_cam": explain.layer_cam}
KINDS = tuple(INPUT_KINDS) + tuple(CAM_KINDS)
TARGETS = ("label", "predicted", "log_prob_sum", "each_log_prob", "each_log_prob_sampled")
PER_CLASS_TARGETS = ("each_log_prob", "each_log_prob_sampled")  # input kinds only
REGIONS = ("outside_object", "annotated")
FIELDS = ("kind", "weight", "layer", "target", "normalize", "region")
# the batch key each region is read from (source.MASK_KEYS)
REGION_MASKS = {"outside_object": "object_mask", "annotated": "ignore_mask"}

Penalty = Callable[[Any, Mapping[str, jax.Array], jax.Array, jax.Array], jax.Array]


def enabled(spec) -> bool:
  return bool(spec) and bool(spec.get("kind"))


def check(spec, model: nn.Module, input_shape: tuple[int, ...]) -> None:
  """Raises ConfigError naming the field for a bad `config.explanation_loss`."""
  check_fields(spec.keys(), FIELDS, "config.explanation_loss.")
  check_one_of(spec["kind"], KINDS, "kind", "config.explanation_loss.kind",
               "(or '' for no penalty)")
  weight = spec.get("weight")
  if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
    raise ConfigError(f"config.explanation_loss.weight must be a number >= 0; got {weight!r}")
  check_one_of(spec.get("target", "label"), TARGETS, "target", "config.explanation_loss.target")
  check_one_of(spec.get("region", REGIONS[0]), REGIONS, "region",
               "config.explanation_loss.region")
  if not isinstance(spec.get("normalize", False), bool):
    raise ConfigError(f"config.explanation_loss.normalize must be True or False; got "
                      f"{spec.get('normalize')!r}")
  layer = spec.get("layer") or ""
  target = spec.get("target")
  if spec["kind"] in CAM_KINDS and target in PER_CLASS_TARGETS:
    raise ConfigError(f"config.explanation_loss.target {target!r} is for the input kinds "
                      f"({', '.join(INPUT_KINDS)}); {spec['kind']!r} draws one map per image")
  if target == "each_log_prob_sampled" and spec.get("normalize"):
    raise ConfigError("config.explanation_loss.target 'each_log_prob_sampled' estimates "
                      "each_log_prob's energy without bias, but not a share of it: with "
                      "normalize=True use target 'each_log_prob'")
  if spec["kind"] in INPUT_KINDS:
    if layer:
      raise ConfigError(f"config.explanation_loss.layer is for the CAM kinds "
                        f"({', '.join(CAM_KINDS)}); {spec['kind']!r} explains the input: "
                        f"leave it ''")
    return
  variables = abstract_variables(model, jax.ShapeDtypeStruct(input_shape, jnp.float32))
  try:
    taps.check_layers(model, variables, jax.ShapeDtypeStruct(input_shape, jnp.float32),
                      [layer] if layer else [])
  except ValueError as e:
    raise ConfigError(f"config.explanation_loss.layer ({type(model).__name__}): {e} "
                      "('' = the last one)") from None


def mask_key(spec) -> str:
  """The batch key of the masks the penalty reads ('object_mask' or 'ignore_mask')."""
  return REGION_MASKS[spec.get("region", REGIONS[0])]


def check_masks(source, spec=None) -> None:
  """Raises ValueError when the training split lacks the masks the penalty's region needs."""
  key = mask_key(spec or {})
  has, missing = ((source.has_object_mask, getattr(source, "missing_masks", ()))
                  if key == "object_mask" else
                  (source.has_ignore_mask, getattr(source, "missing_ignore_masks", ())))
  if has:
    return
  what, suffix = (("object masks", "mask") if key == "object_mask" else
                  ("ignore masks (region 'annotated')", "ignore"))
  detail = (f"; {len(missing)} of {source.num_examples} images have none, e.g. "
            f"{', '.join(missing[:3])} (image folders: cat/001.jpg needs cat/001.{suffix}.png)"
            if missing else "")
  raise ValueError(f"config.explanation_loss needs {what}, and {source.name} split "
                   f"{source.split!r} has none{detail}")


def penalized_region(spec, masks: jax.Array) -> jax.Array:
  """A (B, H, W): where the explanation must not be, from the batch's `mask_key` masks."""
  return 1.0 - masks if mask_key(spec) == "object_mask" else masks


def _sampled_integrated_gradients(model, variables, x, target, key) -> jax.Array:
  """x · ∇S(αx), α ~ U(0, 1) per image: E_α of it is integrated gradients from black."""
  alpha = jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)
  grads = explain.gradient(model, variables, alpha * x, target)
  return grads * (x if grads.ndim == x.ndim else x[:, None])  # (B[, K], H, W, C)


def _target(name: str, labels: jax.Array, key: jax.Array):
  """The explained score; key draws each_log_prob_sampled's signs (B, K)."""
  if name == "label":
    return labels.astype(jnp.int32)
  if name == "predicted":
    return None
  log_probs = lambda outputs: jax.nn.log_softmax(
      outputs.astype(jnp.promote_types(outputs.dtype, jnp.float32)))
  if name == "each_log_prob":
    return log_probs  # (B, K): one map per class
  if name == "each_log_prob_sampled":
    return lambda outputs: jnp.sum(
        jax.random.rademacher(key, outputs.shape, jnp.float32) * log_probs(outputs), axis=-1)
  return lambda outputs: jnp.sum(log_probs(outputs), axis=-1)


def per_example(spec, model: nn.Module, variables, images: jax.Array, region: jax.Array,
                labels: jax.Array, *, batch_statistics: bool = True,
                key: jax.Array | None = None) -> jax.Array:
  """(B,) the penalty of each image before λ (see the module docstring). region: A (B, H,
  W), 1 where the explanation must not be (penalized_region). key: the draw of the sampled
  kind (integrated_gradients) and target (each_log_prob_sampled)."""
  path_key = jax.random.key(0) if key is None else key
  target_key = jax.random.fold_in(path_key, 1)
  kind, target = spec["kind"], _target(spec.get("target", "label"), labels, target_key)

  def attribution():
    if kind == "integrated_gradients":
      return _sampled_integrated_gradients(model, variables, images, target, path_key)
    if kind in INPUT_KINDS:
      return INPUT_KINDS[kind](model, variables, images, target)
    return CAM_KINDS[kind](model, variables, images, spec.get("layer") or None, target)

  if batch_statistics:
    # the real batch's statistics, recorded by one forward pass, normalize the explained
    # points as constants: each image's own explanation (see the module docstring)
    statistics = {}
    with nn.intercept_methods(steps.batchnorm_interceptor(batch_statistics=True,
                                                          statistics=statistics)):
      model.apply(variables, images)
      heat = attribution()
  else:
    heat = attribution()
  dtype = jnp.promote_types(heat.dtype, jnp.float32)  # bf16 models: the sums in float32
  penalized = region.astype(dtype)
  if kind in INPUT_KINDS:  # energy a² (B, H, W, C); one map per class (each_log_prob): Σ_k
    energy = jnp.square(heat.astype(dtype))
    energy = jnp.sum(energy, axis=1) if heat.ndim == images.ndim + 1 else energy
    if spec.get("normalize"):  # the energy as the mass
      return jnp.square(1.0 - explain.mass_inside(energy, 1.0 - penalized))
    return jnp.sum(jnp.square(penalized)[..., None] * energy, axis=(1, 2, 3))
  return jnp.square(1.0 - explain.mass_inside(heat, 1.0 - penalized))  # (B,)


def make(spec, model: nn.Module, *, freeze_bn: bool = False) -> Penalty | None:
  """-> penalty(variables, batch, weights, key) -> λ · mean penalty, or None when off.

  batch needs 'image', 'label' and the region's masks (B, H, W) under `mask_key(spec)`;
  weights (B,) mark real rows; key: a fresh random key per step (the sampled kinds draw
  from it).
  """
  if not enabled(spec):
    return None
  spec = dict(spec)
  weight = float(spec["weight"])

  def penalty(variables, batch, weights, key):
    region = penalized_region(spec, batch[mask_key(spec)])
    terms = per_example(spec, model, variables, batch["image"], region, batch["label"],
                        batch_statistics=not freeze_bn, key=key)
    return weight * jnp.sum(terms * weights) / jnp.maximum(jnp.sum(weights), 1.0)

  return penalty

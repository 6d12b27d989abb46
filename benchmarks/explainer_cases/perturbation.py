"""Benchmark cases: see explainer_cases/__init__.py.

Perturbation methods against Captum's classes, the same settings on both sides: ours batch
PER_PASS perturbations of every image per forward (chunk), Captum as many
(perturbations_per_eval: B·PER_PASS rows per forward, or PER_PASS rows for Lime / KernelShap,
which Captum fits one example at a time). ~130 forwards of ResNet-50 at 224² per call.
Captum draws its own permutations and samples (the same number of forwards as ours).
"""
import numpy as np

from explainer_cases import Case

PER_PASS = 8
GRID = 4  # segments: a 4 × 4 grid
SAMPLES = 16  # KernelShap / Lime samples; Shapley sampling: 1 order of the 16 segments


def cases(bench):
  # pylint: disable=import-outside-toplevel
  import torch
  from captum import attr as captum_attr

  from cnnviz_jax.explain.perturbation import feature_ablation, grid_segments, occlusion
  from cnnviz_jax.explain.shapley import shapley_value_sampling
  from cnnviz_jax.explain.surrogate import kernel_shap, lime
  # pylint: enable=import-outside-toplevel
  segments = grid_segments(bench.x.shape, GRID)
  mask = torch.from_numpy(segments[:, None].astype(np.int64)).to(bench.device)
  reference, target = bench.reference, bench.target_jax

  def ours(fn, **kwargs):
    return lambda: bench.ours(fn, target=target, chunk=PER_PASS, **kwargs)

  def peer(cls, **kwargs):
    return lambda: bench.captum_peer(cls(reference), perturbations_per_eval=PER_PASS, **kwargs)

  window, stride = bench.args.size // 2, bench.args.size // 4  # 3 × 3 windows: 112/56 at 224
  return [
      Case(f"occlusion ({window}/{stride})", ours(occlusion, window=window, stride=stride),
           peer(captum_attr.Occlusion, sliding_window_shapes=(3, window, window),
                strides=stride), "Captum Occlusion", repeats=2),
      Case(f"feature_ablation ({GRID}x{GRID})", ours(feature_ablation, segments=segments),
           peer(captum_attr.FeatureAblation, feature_mask=mask), "Captum FeatureAblation",
           repeats=2),
      Case(f"shapley_value_sampling ({GRID}x{GRID}, 1)",
           ours(shapley_value_sampling, segments=segments, samples=1),
           peer(captum_attr.ShapleyValueSampling, feature_mask=mask, n_samples=1),
           "Captum ShapleyValueSampling", repeats=2),
      Case(f"kernel_shap ({GRID}x{GRID}, {SAMPLES})",
           ours(kernel_shap, segments=segments, samples=SAMPLES),
           peer(captum_attr.KernelShap, feature_mask=mask, n_samples=SAMPLES),
           "Captum KernelShap", repeats=2),
      Case(f"lime ({GRID}x{GRID}, {SAMPLES})", ours(lime, segments=segments, samples=SAMPLES),
           peer(captum_attr.Lime, feature_mask=mask, n_samples=SAMPLES), "Captum Lime",
           repeats=2),
  ]

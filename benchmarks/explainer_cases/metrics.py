"""Benchmark cases: see explainer_cases/__init__.py.

Faithfulness and robustness metrics against their peers, the same settings on both sides:
  road             ROADCombined at percentiles 25 and 75 (4 imputations of every image, 4
                   forwards of B images) of a fixed smooth map; pytorch-grad-cam imputes with
                   scipy's sparse LU one image at a time, ours by multigrid CG, batched.
  infidelity       SAMPLES Gaussian perturbations (σ 0.003) per image, ROWS rows per forward.
  sensitivity_max  the gradient under SAMPLES uniform perturbations (radius 0.02), ROWS rows
                   per gradient pass.
Each side draws its own noise (same distributions and counts).
"""
import numpy as np

from explainer_cases import Case

ROAD_PERCENTILES = (25, 75)
SAMPLES = 8  # perturbations per image
ROWS = 16  # perturbed rows per forward (or gradient) pass, both sides


def _smooth_maps(batch: int, size: int) -> np.ndarray:
  """(B, S, S) maps in [0, 1]: a 7×7 random grid, bilinearly upsampled (like a CAM)."""
  import jax  # pylint: disable=import-outside-toplevel
  coarse = np.random.RandomState(2).rand(batch, 7, 7).astype(np.float32)
  return np.asarray(jax.image.resize(coarse, (batch, size, size), "linear"))


def cases(bench):
  # pylint: disable=import-outside-toplevel
  import jax
  import torch
  from captum import attr as captum_attr
  from captum import metrics as captum_metrics
  from pytorch_grad_cam.metrics.road import ROADCombined
  from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

  from cnnviz_jax.explain.gradients import gradient
  from cnnviz_jax.explain.road import road
  from cnnviz_jax.explain.robustness import infidelity, sensitivity_max
  # pylint: enable=import-outside-toplevel
  batch, size = bench.x.shape[:2]
  cams = _smooth_maps(batch, size)
  attributions = np.random.RandomState(3).randn(*bench.x.shape).astype(np.float32) * 1e-3
  attributions_torch = torch.from_numpy(attributions.transpose(0, 3, 1, 2).copy()).to(
      bench.device)
  targets = [ClassifierOutputTarget(c) for c in bench.classes]
  key = jax.random.key(0)

  def peer_road():
    ROADCombined(list(ROAD_PERCENTILES))(bench.x_torch, cams, targets, bench.reference)

  def perturb(inputs):
    noise = 0.003 * torch.randn_like(inputs)
    return noise, inputs - noise

  def peer_infidelity():
    with torch.no_grad():
      captum_metrics.infidelity(bench.reference, perturb, bench.x_torch, attributions_torch,
                                target=bench.classes, n_perturb_samples=SAMPLES,
                                max_examples_per_batch=ROWS)
    bench.torch_sync()

  saliency = captum_attr.Saliency(bench.reference)

  def peer_sensitivity():
    captum_metrics.sensitivity_max(saliency.attribute, bench.x_torch.clone(),
                                   n_perturb_samples=SAMPLES, max_examples_per_batch=ROWS,
                                   target=bench.classes, abs=False)
    bench.torch_sync()

  rows_per_image = max(1, ROWS // batch)
  return [
      Case(f"road (combined, {len(ROAD_PERCENTILES)} percentiles)",
           lambda: bench.ours(road, arrays={"saliency": jax.device_put(cams)},
                              target=bench.target_jax,
                              percentiles=ROAD_PERCENTILES, order="combined", key=key),
           lambda: peer_road, "pytorch-grad-cam ROADCombined", repeats=2),
      Case(f"infidelity ({SAMPLES})",
           lambda: bench.ours(infidelity, arrays={"attributions": jax.device_put(attributions)},
                              target=bench.target_jax, samples=SAMPLES, key=key, chunk=ROWS),
           lambda: peer_infidelity, "Captum infidelity", repeats=2),
      Case(f"sensitivity_max ({SAMPLES})",
           lambda: bench.ours(sensitivity_max, explainer=gradient, target=bench.target_jax,
                              samples=SAMPLES, key=key, chunk=rows_per_image),
           lambda: peer_sensitivity, "Captum sensitivity_max (Saliency)", repeats=2),
  ]

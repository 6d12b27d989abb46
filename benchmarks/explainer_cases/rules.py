"""Benchmark cases: see explainer_cases/__init__.py.

The rule-based and baseline methods against Captum's classes: DeepLift, DeepLiftShap,
LayerDeepLift (layer4), LRP (ε) and GradientShap. Captum's DeepLift refuses torchvision's
ResNet as shipped (one ReLU module called twice per block) and its LRP wants an
Addition_Module per residual addition, so those peers run on the same weights in the form
Captum asks for: tests/explain/captum_views.own_modules (same function, a module per
operation). Baselines: zeros (DeepLift, LayerDeepLift); a distribution of 4 small random
images (DeepLiftShap, GradientShap: --samples draws per image, noise std 0.1).
"""
import os
import sys

from explainer_cases import Case

_BASELINES = 4


def _captum_view(reference):
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "tests", "explain"))
  import captum_views  # pylint: disable=import-outside-toplevel,import-error
  return captum_views.own_modules(reference, clone_before_pools=False).to(
      next(reference.parameters()).device)


def cases(bench):
  # pylint: disable=import-outside-toplevel
  import numpy as np
  import torch
  from captum import attr as captum_attr
  import cnnviz_jax as cj
  # pylint: enable=import-outside-toplevel
  E, args = cj.explain, bench.args
  view = _captum_view(bench.reference)
  baselines = 0.1 * np.random.RandomState(1).randn(_BASELINES, *bench.x.shape[1:]).astype(
      np.float32)
  baselines_torch = torch.from_numpy(baselines.transpose(0, 3, 1, 2).copy()).to(bench.device)
  target = bench.target_jax
  return [
      Case("deep_lift", lambda: bench.ours(E.deep_lift, target=target),
           lambda: bench.captum_peer(captum_attr.DeepLift(view)), "Captum DeepLift"),
      Case(f"deep_lift_shap ({_BASELINES})",
           lambda: bench.ours(E.deep_lift_shap, target=target, baselines=baselines,
                              chunk=args.chunk),
           lambda: bench.captum_peer(captum_attr.DeepLiftShap(view), baselines=baselines_torch),
           "Captum DeepLiftShap"),
      Case("layer_deep_lift", lambda: bench.ours(E.layer_deep_lift, layer="layer4",
                                                 target=target),
           lambda: bench.captum_peer(captum_attr.LayerDeepLift(view, view.layer4)),
           "Captum LayerDeepLift"),
      Case("lrp", lambda: bench.ours(E.lrp, target=target),
           lambda: bench.captum_peer(captum_attr.LRP(view)), "Captum LRP"),
      Case(f"gradient_shap ({args.samples})",
           lambda: bench.ours(E.gradient_shap, target=target, baselines=baselines,
                              samples=args.samples, stdev=0.1, chunk=args.chunk),
           lambda: bench.captum_peer(captum_attr.GradientShap(bench.reference),
                                     baselines=baselines_torch, n_samples=args.samples,
                                     stdevs=0.1),
           "Captum GradientShap"),
  ]

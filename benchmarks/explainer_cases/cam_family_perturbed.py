"""Benchmark cases: see explainer_cases/__init__.py. The gradient-free and bias-gradient CAMs
(ablation_cam.py, full_grad.py) against pytorch-grad-cam.

ablation_cam: one image at --score-cam-size px (as score_cam: the peer runs the whole
ResNet-50 once per layer4 channel, 2,048 forwards; --score-cam-size 112 keeps its call near
half a minute on one core), its top-1 class; ours runs pooling and classifier per channel.
full_grad: the batch's first 2 images (the peer resizes each of ResNet-50's 26,560 BatchNorm
channel maps of an image to the input size: 0.8 GB per layer at 224 px for 2 images).
"""
from explainer_cases import Case


def _ablation_cam(bench) -> Case:
  # pylint: disable=import-outside-toplevel
  import functools

  import jax
  import numpy as np
  import torch
  import pytorch_grad_cam as pgc
  from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
  from cnnviz_jax.explain.ablation_cam import ablation_cam
  # pylint: enable=import-outside-toplevel
  size = bench.args.score_cam_size

  @functools.cache
  def image():  # (ours, theirs, top-1 class), made when the case is selected
    one = np.random.RandomState(1).randn(1, size, size, 3).astype(np.float32)
    one_torch = torch.from_numpy(one.transpose(0, 3, 1, 2).copy()).to(bench.device)
    with torch.no_grad():
      return jax.device_put(one), one_torch, int(bench.reference(one_torch).argmax())

  return Case(f"ablation_cam (1 img {size}px)",
              lambda: bench.ours(ablation_cam, image()[0], layer="layer4", target=image()[2],
                                 chunk=64),  # the peer's batch of ablated copies (cam_peer)
              lambda: bench.cam_peer(pgc.AblationCAM, image()[1],
                                     [ClassifierOutputTarget(image()[2])]),
              "pytorch-grad-cam AblationCAM", images=1, warmup=0, repeats=1)


def _full_grad(bench) -> Case:
  # pylint: disable=import-outside-toplevel
  import jax
  import pytorch_grad_cam as pgc
  from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
  from cnnviz_jax.explain.full_grad import full_grad
  # pylint: enable=import-outside-toplevel
  images = min(2, bench.args.batch)
  two = jax.device_put(bench.x[:images])
  targets = [ClassifierOutputTarget(c) for c in bench.classes[:images]]
  return Case(f"full_grad ({images} img)",
              lambda: bench.ours(full_grad, two, target=bench.target_jax[:images]),
              lambda: bench.cam_peer(pgc.FullGrad, bench.x_torch[:images], targets),
              "pytorch-grad-cam FullGrad", images=images)


def cases(bench):
  return [_ablation_cam(bench), _full_grad(bench)]

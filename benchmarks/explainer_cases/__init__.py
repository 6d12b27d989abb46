"""Benchmark cases of the explainer families, one module per family; explainers.py times them.

A family module defines `cases(bench) -> list[Case]`. `bench` (built by explainers.py) has:
  model, variables      our ResNet-50 and its variables converted from `reference`
  reference             the torchvision ResNet-50 (random weights, eval mode, on `device`)
  x, x_jax, x_torch     the batch: numpy NHWC, on the JAX device, torch NCHW on `device`
  classes, target_jax   each image's top-1 class: a list (for the peers), a numpy array
  args                  batch, size, repeats, steps, samples, chunk (the command line)
  ours(fn, inputs=x_jax, arrays=None, **kwargs) -> a timed call of jit(partial(fn, model,
                        **kwargs)); arrays: keyword arrays passed at call time, not folded
  captum_peer(attribution, **kwargs)     -> a timed `attribution.attribute(x_torch, target=classes)`
  cam_peer(cls, inputs, targets, layers=None) -> a timed pytorch-grad-cam call (layer4)
  torch_sync()
Builders are called only for the cases selected with --only, so nothing else compiles.
"""
import dataclasses
from typing import Callable

Timed = Callable[[], None]


@dataclasses.dataclass(frozen=True)
class Case:
  name: str  # our function's name; a parenthesized suffix may give the setting
  make_jax: Callable[[], Timed]
  make_peer: Callable[[], Timed]
  peer_name: str
  images: int | None = None  # images explained per call; None: the batch
  warmup: int = 1
  repeats: int | None = None  # None: --repeats

  @property
  def method(self) -> str:
    return self.name.split(" (")[0]

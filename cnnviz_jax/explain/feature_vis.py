"""Activation maximization: optimize an input to excite one channel or unit.

Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017
(doi:10.23915/distill.00007), with the parametrization of Mordvintsev et al.,
"Differentiable Image Parameterizations", Distill 2018: the image is a 1/f-scaled Fourier
spectrum, color-decorrelated and squashed by a sigmoid, so Adam's steps favor low
frequencies; each step sees a randomly jittered and rescaled copy (transformation
robustness), which keeps high-frequency adversarial patterns out. One image per target,
all optimized together in one jitted `lax.scan`: deterministic for a seed.
"""
import functools
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnnviz_jax.models import taps

# Square root of ImageNet's RGB color correlation (Lucid's `color_correlation_svd_sqrt`),
# normalized so its largest column has norm 1.
_COLOR = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR = _COLOR / np.max(np.linalg.norm(_COLOR, axis=0))
_PARAMETRizATIONS = ("fourier", "pixel")


class Visualization(NamedTuple):
  images: jax.Array  # (N, H, W, 3) in [0, 1]: the optimized inputs, before `preprocess`
  objective: jax.Array  # (N,) the target's activation on the final (untransformed) image
  history: jax.Array  # (steps, N) the objective on each step's transformed image


def _frequencies(height: int, width: int) -> np.ndarray:
  fy = np.fft.fftfreq(height)[:, None]
  fx = np.fft.rfftfreq(width)[None, :]
  return np.sqrt(fx * fx + fy * fy)  # (H, W // 2 + 1)


def _to_image(params, parametrization: str, height: int, width: int, decay: float):
  """Parameters -> (N, H, W, 3) image in [0, 1]."""
  if parametrization == "pixel":
    return jax.nn.sigmoid(params)
  scale = 1.0 / np.maximum(_frequencies(height, width), 1.0 / max(height, width)) ** decay
  spectrum = jax.lax.complex(params[..., 0], params[..., 1]) * scale  # (N, 3, H, W//2+1)
  image = jnp.fft.irfftn(spectrum, s=(height, width), axes=(-2, -1)) * np.sqrt(height * width)
  image = jnp.moveaxis(image, 1, -1) / 4.0  # (N, H, W, 3); Lucid's spectrum normalization
  return jax.nn.sigmoid(image @ _COLOR.T)


def _transform(key, images, jitter: float, scale: tuple[float, float]):
  """Random shift of up to `jitter` px and zoom in `scale` per image (bilinear, in place)."""
  n, h, w, _ = images.shape
  k1, k2 = jax.random.split(key)
  s = jax.random.uniform(k1, (n, 1), minval=scale[0], maxval=scale[1])
  shift = jax.random.uniform(k2, (n, 2), minval=-jitter, maxval=jitter)
  center = jnp.array([h, w], jnp.float32) / 2
  translation = (1 - s) * center + shift  # zoom about the center, then shift

  def one(img, s, t):
    return jax.image.scale_and_translate(img, img.shape, (0, 1), jnp.repeat(s, 2), t, "linear")

  return jax.vmap(one)(images, s, translation)


def activation_maximization(model: nn.Module, variables, layer: str, channels: int | Sequence[int],
                            *, unit: Sequence[int] | None = None, size: int | None = None,
                            steps: int = 256, learning_rate: float = 0.05, seed: int = 0,
                            parametrization: str = "fourier", decay: float = 1.0,
                            jitter: float = 2.0, scale: tuple[float, float] = (0.95, 1.05),
                            preprocess: Callable[[jax.Array], jax.Array] = lambda x: x
                            ) -> Visualization:
  """One image per entry of `channels` that maximizes it at `layer`.

  The objective is the channel's mean activation over the map, or, with unit=(row, col),
  that one unit's. size: image side (default `model.input_size` or 224). preprocess maps
  the [0, 1] image to the model's input (e.g. the dataset's normalization).
  parametrization: 'fourier' (decorrelated, default) or 'pixel' (plain sigmoid pixels).
  Contract: jits and vmaps over `variables`; there is no input batch to shard. The
  optimization sees the parameters through `stop_gradient`: `images` and `history` have a
  zero parameter gradient (differentiating Adam's sign-like normalized steps is ill-
  conditioned and costs a backward pass per step); `objective`, the final images'
  activation, is differentiable in the parameters with the images held fixed.
  """
  if parametrization not in _PARAMETRizATIONS:
    raise ValueError(f"unknown parametrization {parametrization!r}; valid: "
                     f"{', '.join(_PARAMETRizATIONS)}")
  size = size or taps.example_input(model).shape[1]
  channels = np.atleast_1d(np.asarray(channels))
  shapes = taps.check_layers(model, variables,
                             jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32), [layer])
  if np.any((channels < 0) | (channels >= shapes[layer][-1])):
    raise ValueError(f"channels must be in [0, {shapes[layer][-1]}) for layer {layer!r}")
  return _optimize(model, layer, tuple(unit) if unit is not None else None, size, steps,
                   learning_rate, parametrization, decay, jitter, tuple(scale), preprocess,
                   variables, jnp.asarray(channels), jax.random.key(seed))


@functools.partial(jax.jit, static_argnums=tuple(range(11)))
def _optimize(model, layer, unit, size, steps, learning_rate, parametrization, decay, jitter,
              scale, preprocess, variables, channels, key):
  n = channels.shape[0]
  fixed = jax.lax.stop_gradient(variables)  # the optimization is a constant (see the docstring)

  def objective(images, variables=fixed):  # (N, H, W, 3) in [0, 1] -> (N,) activations
    acts = taps.apply_with_taps(model, variables, preprocess(images), [layer])[1][layer]
    picked = jnp.take_along_axis(acts, channels[:, None, None, None], -1)[..., 0]  # (N, h, w)
    return picked[:, unit[0], unit[1]] if unit is not None else picked.mean((1, 2))

  init_key, key = jax.random.split(key)
  shape = ((n, size, size, 3) if parametrization == "pixel"
           else (n, 3, size, size // 2 + 1, 2))
  params = 0.01 * jax.random.normal(init_key, shape)
  render = functools.partial(_to_image, parametrization=parametrization, height=size,
                             width=size, decay=decay)
  optimizer = optax.adam(learning_rate)

  def loss(p, k):
    value = objective(_transform(k, render(p), jitter, scale))
    return -value.sum(), value  # targets are independent: the sum's gradient is per image

  def step(carry, k):
    p, opt_state = carry
    grads, value = jax.grad(loss, has_aux=True)(p, k)
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), value

  (params, _), history = jax.lax.scan(step, (params, optimizer.init(params)),
                                      jax.random.split(key, steps))
  images = render(params)
  return Visualization(images, objective(images, variables), history)

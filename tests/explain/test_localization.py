"""Grad-CAM lands on the object for a small net trained here on generated images.

Images: Gaussian noise with one 8×8 square whose color (R, G or B) is the class, at a
random position — the label is position-independent, so a map that points at the
square does so because the network looks there. A center guess is the baseline.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import cnnviz_jax as cj

SIZE, SIDE = 32, 8


def _squares(n: int, seed: int):
  rng = np.random.RandomState(seed)
  x = rng.randn(n, SIZE, SIZE, 3).astype(np.float32) * 0.5
  labels = rng.randint(0, 3, n)
  corners = rng.randint(0, SIZE - SIDE + 1, (n, 2))
  masks = np.zeros((n, SIZE, SIZE), bool)
  for i, ((r, c), k) in enumerate(zip(corners, labels)):
    masks[i, r:r + SIDE, c:c + SIDE] = True
    x[i, r:r + SIDE, c:c + SIDE, :] = 0.0
    x[i, r:r + SIDE, c:c + SIDE, k] = 2.0
  return jnp.asarray(x), jnp.asarray(labels), masks


@pytest.fixture(scope="module")
def trained():
  model = cj.models.create("small_cnn_bn", num_classes=3)
  x, y, _ = _squares(2048, seed=0)
  variables = cj.models.initialize(model, jax.random.key(0), x[:1])
  optimizer = optax.adam(3e-3)
  opt_state = optimizer.init(variables["params"])

  @jax.jit
  def step(variables, opt_state, xb, yb):
    def loss(params):
      logits, updates = model.apply({**variables, "params": params}, xb, train=True,
                                    mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), updates
    grads, updates = jax.grad(loss, has_aux=True)(variables["params"])
    changes, opt_state = optimizer.update(grads, opt_state)
    params = optax.apply_updates(variables["params"], changes)
    return {"params": params, **updates}, opt_state

  for i in range(150):
    batch = slice((i * 32) % 2048, (i * 32) % 2048 + 32)
    variables, opt_state = step(variables, opt_state, x[batch], y[batch])
  return model, variables


@pytest.mark.slow
def test_grad_cam_maximum_falls_on_the_object(trained):
  model, variables = trained
  x, y, masks = _squares(256, seed=1)
  accuracy = float(jnp.mean(jnp.argmax(model.apply(variables, x), -1) == y))
  assert accuracy > 0.95, accuracy
  heat = jax.jit(functools.partial(cj.explain.grad_cam, model, layer="block4_conv1"))(
      variables, x, target=y)
  heat = np.asarray(cj.explain.upsample(heat, (SIZE, SIZE)))
  peak = heat.reshape(len(x), -1).argmax(-1)
  hits = masks.reshape(len(x), -1)[np.arange(len(x)), peak].mean()
  center = masks[:, SIZE // 2, SIZE // 2].mean()
  print(f"Grad-CAM peak on the object: {hits:.0%} of images; center guess: {center:.0%}")
  assert hits > 0.8 and hits > center + 0.5, (hits, center)

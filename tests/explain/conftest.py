"""Shared models for the explainer tests: converted torchvision pairs and a tiny net."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj


def _close(ours, ref, tol: float = 1e-4) -> float:
  """Max |ours - ref| relative to max |ref| (both maps on the same scale); asserts <= tol."""
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  assert ours.shape == ref.shape, (ours.shape, ref.shape)
  err = float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))
  if os.environ.get("EXPLAIN_PRINT_DIFFS"):  # for reports: the measured agreement
    print(f" [max diff {err:.2e}]", end="")
  assert err <= tol, f"max diff {err:.3g} (relative to the reference's max) > {tol}"
  return err


@pytest.fixture(scope="session")
def close():
  return _close


@pytest.fixture(scope="session")
def torch_pair(torch_reference):
  """(torch model, our model, converted variables) for arch, cached per arch."""
  cache = {}

  def get(arch: str):
    if arch not in cache:
      reference = torch_reference(arch, num_classes=10)
      variables, _ = cj.weights.from_torchvision(arch, reference.state_dict())
      cache[arch] = (reference, cj.models.create(arch, num_classes=10), variables)
    return cache[arch]

  return get


@pytest.fixture(scope="session")
def tiny():
  """small_cnn_bn (4 classes) with random weights and BN statistics, 2 images of 32×32."""
  model = cj.models.create("small_cnn_bn", num_classes=4)
  x = jnp.asarray(np.random.RandomState(0).randn(2, 32, 32, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  rng = np.random.RandomState(1)
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.asarray(rng.uniform(0.5, 2, v.shape), v.dtype)
      if "var" in jax.tree_util.keystr(path) else
      (jnp.asarray(rng.uniform(-0.3, 0.3, v.shape), v.dtype)
       if "mean" in jax.tree_util.keystr(path) else v), variables)
  return model, variables, x

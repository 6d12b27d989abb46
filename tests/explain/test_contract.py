"""The explainer contract, for every method `cj.explain` exports: a pure function of
(model, variables, x, …) that jits, vmaps over `variables`, shards over the batch, and is
differentiable in the parameters where its definition is (against finite differences).

Methods that cannot meet a point say so in their docstrings; the tests below pin those
limitations. The 8-device check runs every method in one subprocess (contract_sharded.py).
"""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax import xla_flags
from contract_methods import HELPERS, LAYER, METHODS, images, tiny_model, tiny_variables

NAMES = sorted(METHODS)
# over 5 s each to compile (their loops, or many forwards): the full suite's, not the quick tier's
SLOW_TO_VMAP = {"activation_maximization", "deletion_insertion", "max_activating_patches",
                "randomization_check", "score_cam", "smoothgrad",
                "road", "tcav", "sensitivity_max", "infidelity", "ablation_cam", "full_grad"}


def _close(a, b, name, rtol=1e-5, atol=1e-6):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b), name
  for u, w in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(w, np.float64), rtol=rtol,
                               atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def setup():
  model = tiny_model()
  x = images()
  ensemble = [tiny_variables(model, seed, x) for seed in range(3)]
  return model, x, ensemble


def test_every_export_is_an_explainer_under_contract_or_a_named_helper():
  exported = {name for name in dir(cj.explain) if not name.startswith("_")
              and callable(getattr(cj.explain, name))
              and not isinstance(getattr(cj.explain, name), type(cj))}
  assert exported == set(METHODS) | HELPERS, (exported ^ (set(METHODS) | HELPERS))


@pytest.mark.parametrize("name", [n for n in NAMES if not METHODS[n].uses_variables])
def test_model_free_methods_jit(setup, name):
  model, x, _ = setup
  call = METHODS[name].call
  _close(jax.jit(lambda z: call(model, None, z))(x), call(model, None, x), name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] * (n in SLOW_TO_VMAP))
                                  for n in NAMES if METHODS[n].uses_variables])
def test_jit_and_vmap_over_an_ensemble_of_variables_equal_a_python_loop(setup, name):
  """jit: every call below is jitted; vmap over 3 stacked inits = the 3 jitted calls."""
  model, x, ensemble = setup
  call = jax.jit(lambda v, z: METHODS[name].call(model, v, z))
  stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *ensemble)
  together = jax.jit(jax.vmap(lambda v: METHODS[name].call(model, v, x)))(stacked)
  for i, variables in enumerate(ensemble):
    _close(jax.tree.map(lambda a, i=i: a[i], together), call(variables, x), f"{name}[{i}]",
           rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if METHODS[n].differentiable is not None])
def test_parameter_gradient_matches_finite_differences(setup, name):
  method = METHODS[name]
  with jax.enable_x64(True):
    model = tiny_model(jnp.float64)
    x = jnp.asarray(setup[1], jnp.float64)
    variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), setup[2][0])
    out = jax.eval_shape(lambda v: method.differentiable(method.call(model, v, x)), variables)
    rng = np.random.RandomState(3)
    weights = jax.tree.map(lambda a: jnp.asarray(rng.randn(*a.shape)), out)  # a random read-out

    def scalar(params):
      got = method.differentiable(method.call(model, {**variables, "params": params}, x))
      return sum(jnp.vdot(w, g) for w, g in zip(jax.tree.leaves(weights), jax.tree.leaves(got)))

    value_and_grad = jax.jit(jax.value_and_grad(scalar))  # one compile serves both checks
    grads = value_and_grad(variables["params"])[1]
    direction = jax.tree.map(lambda p: jnp.asarray(rng.randn(*p.shape)), grads)
    eps = 1e-7  # small: a ReLU or max-pool switch must not fall inside the step (1e-6 did
    # for randomization_check: its fresh layers have zero biases, so pre-activations sit at 0)
    shifted = [jax.tree.map(lambda p, d, s=s: p + s * eps * d, variables["params"], direction)
               for s in (1, -1)]
    numeric = (value_and_grad(shifted[0])[0] - value_and_grad(shifted[1])[0]) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                   jax.tree.leaves(direction)))
    assert abs(float(analytic)) > 1e-6, name
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, err_msg=name)


@pytest.mark.slow  # every method, compiled for 8 devices in a subprocess
def test_sharded_over_8_devices_equals_one_device():
  flags = f"{xla_flags.CPU_FLAGS} --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  here = os.path.dirname(os.path.abspath(__file__))
  result = subprocess.run([sys.executable, os.path.join(here, "contract_sharded.py")], env=env,
                          capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(here)))
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  done = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" ok")}
  assert done == set(METHODS), set(METHODS) - done


# --- The stated limitations --------------------------------------------------------------
@pytest.mark.slow
def test_activation_maximization_images_are_constant_in_the_parameters(setup):
  """Its docstring: the optimization sees the parameters through stop_gradient, and the
  objective's gradient is that of the layer's activation on the final images held fixed."""
  model, x, ensemble = setup
  call = METHODS["activation_maximization"].call
  run = lambda p: call(model, {**ensemble[0], "params": p}, x)  # noqa: E731
  params = ensemble[0]["params"]
  grads = jax.grad(lambda p: jnp.sum(run(p).images))(params)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))
  images = run(params).images  # channels (0, 1) of LAYER, one image each

  def on_fixed_images(p):
    acts = cj.models.apply_with_taps(model, {**ensemble[0], "params": p}, images,
                                     [LAYER])[1][LAYER]
    return jnp.mean(acts[0, :, :, 0]) + jnp.mean(acts[1, :, :, 1])

  ours = jax.grad(lambda p: jnp.sum(run(p).objective))(params)
  _close(ours, jax.grad(on_fixed_images)(params), "objective", rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_randomization_check_spearman_has_a_zero_gradient(setup):
  model, x, ensemble = setup
  call = METHODS["randomization_check"].call
  out = lambda p: call(model, {**ensemble[0], "params": p}, x)  # noqa: E731
  rho = jax.grad(lambda p: jnp.sum(out(p).spearman))(ensemble[0]["params"])
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(rho))
  # (the maps' gradient is non-zero and right: test_parameter_gradient_matches_…)


def test_the_model_free_methods_their_stated_types(setup):
  """receptive_field: plain ints from shapes alone (no variables, nothing to trace);
  pointing_game: booleans (hits are not differentiable); mass_inside: differentiable in the
  saliency (the explanation penalty uses it), checked against central differences."""
  model, x, _ = setup
  field = cj.explain.receptive_field(model, "block3_conv1")
  assert all(isinstance(v, int) for part in field for v in part)
  hits = METHODS["pointing_game"].call(model, None, x)
  assert hits.dtype == jnp.bool_ and hits.shape == (x.shape[0],)
  with jax.enable_x64(True):
    rng = np.random.RandomState(0)
    saliency = jnp.asarray(rng.rand(3, 4, 4))
    masks = jnp.asarray(rng.rand(3, 10, 10) > 0.5, jnp.float64)  # 10 -> 4: uneven cells
    direction = jnp.asarray(rng.randn(3, 4, 4))
    f = lambda s: jnp.sum(cj.explain.mass_inside(s, masks) * jnp.arange(1.0, 4.0))  # noqa: E731
    analytic = jnp.vdot(jax.grad(f)(saliency), direction)
    numeric = (f(saliency + 1e-6 * direction) - f(saliency - 1e-6 * direction)) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)

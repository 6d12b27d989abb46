"""Explainers under jit, grad (with respect to the parameters) and an 8-device mesh."""
import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax import xla_flags

E = cj.explain


@pytest.mark.slow
def test_grad_cam_loss_is_differentiable_in_the_parameters(tiny):
  """A "right for the right reasons" penalty (Ross et al. 2017): Grad-CAM mass outside a
  mask, differentiated w.r.t. the parameters; checked against central differences."""
  model, variables, x = tiny
  with jax.enable_x64(True):
    model = model.clone(dtype=jnp.float64)
    variables, x = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (variables, x))
    outside = jnp.asarray(np.random.RandomState(0).rand(2, 8, 8) > 0.5, jnp.float64)

    def penalty(params):
      heat = E.grad_cam(model, {**variables, "params": params}, x, "block3_conv1",
                        np.array([1, 2]))
      return jnp.sum(heat * outside)

    grads = jax.jit(jax.grad(penalty))(variables["params"])
    direction = jax.tree.map(lambda p: jnp.asarray(np.random.RandomState(p.size % 97)
                                                   .randn(*p.shape)), grads)
    eps = 1e-7  # Grad-CAM jumps where a ReLU flips: the step must not cross one
    shifted = [jax.tree.map(lambda p, d, s=s: p + s * eps * d, variables["params"], direction)
               for s in (1, -1)]
    numeric = (penalty(shifted[0]) - penalty(shifted[1])) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                   jax.tree.leaves(direction)))
    assert float(jnp.abs(analytic)) > 0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_explainers_jit_with_the_model_static(tiny):
  model, variables, x = tiny
  run = jax.jit(E.grad_cam, static_argnums=(0, 3, 4))
  np.testing.assert_allclose(run(model, variables, x, "block4_conv1", (0, 1)),
                             E.grad_cam(model, variables, x, "block4_conv1", [0, 1]),
                             rtol=1e-5, atol=1e-7)


_SHARDED = textwrap.dedent("""
    import functools, jax, jax.numpy as jnp, numpy as np
    import cnnviz_jax as cj
    from jax.sharding import NamedSharding, PartitionSpec as P
    E = cj.explain
    assert jax.device_count() == 8, jax.devices()
    model = cj.models.create("small_cnn_bn", num_classes=4)
    x = jnp.asarray(np.random.RandomState(0).randn(8, 32, 32, 3), jnp.float32)
    variables = cj.models.initialize(model, jax.random.key(0), x)
    calls = {
        "all_classes": functools.partial(E.grad_cam_plus_plus, model, layer="block3_conv1",
                                         target="all"),
        "score_cam": functools.partial(E.score_cam, model, layer="block4_conv1", chunk=40),
        "guided_2_classes": functools.partial(E.guided_backprop, model, target=[0, 3]),
        "ig": functools.partial(E.integrated_gradients, model, steps=4, chunk=16),
    }
    # the training code's Mesh (auto axes) and jax.make_mesh's (explicit axes)
    meshes = {"auto": jax.sharding.Mesh(np.asarray(jax.devices()), ("batch",)),
              "explicit": jax.make_mesh((8,), ("batch",))}
    for name, fn in calls.items():
      single = jax.jit(fn)(jax.device_put(variables, jax.devices()[0]),
                           jax.device_put(x, jax.devices()[0]))
      for kind, mesh in meshes.items():
        xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
        vs = jax.device_put(variables, NamedSharding(mesh, P()))
        sharded = jax.jit(fn)(vs, xs)
        assert len(sharded.sharding.device_set) == 8, (name, sharded.sharding)
        np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-6, err_msg=name)
        print(name, kind, "ok", flush=True)
""")


@pytest.mark.slow
def test_sharded_over_8_devices_equals_one_device():
  flags = f"{xla_flags.CPU_FLAGS} --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True,
                          text=True, timeout=300, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
  assert result.returncode == 0, result.stdout + result.stderr[-3000:]
  assert result.stdout.count(" ok") == 8, result.stdout

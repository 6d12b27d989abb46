"""Run by test_contract.py under 8 simulated CPU devices: every explainer with the batch
sharded over the training code's Mesh equals the same call on one device. Methods without
a batch axis run with replicated inputs. Prints '<name> ok' per method."""
import os
import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]  # this checkout's cnnviz_jax
from contract_methods import METHODS, images, tiny_model, tiny_variables  # noqa: E402

assert jax.device_count() == 8, jax.devices()
model = tiny_model()
x = images()
variables = tiny_variables(model, 0, x)
mesh = Mesh(np.asarray(jax.devices()), ("batch",))
one = jax.devices()[0]
for name, method in sorted(METHODS.items()):
  call = jax.jit(lambda v, z, method=method: method.call(model, v, z))
  single = call(jax.device_put(variables, one), jax.device_put(x, one))
  xs = jax.device_put(x, NamedSharding(mesh, P("batch" if method.batched else None)))
  sharded = call(jax.device_put(variables, NamedSharding(mesh, P())), xs)
  for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single)):
    if method.batched and getattr(a, "ndim", 0) and a.shape[0] == x.shape[0]:
      assert len(a.sharding.device_set) == 8, (name, a.sharding)
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=1e-5, atol=1e-6, err_msg=name)
  print(name, "ok", flush=True)

"""A model registered from outside the package gets layer names and gradients for free."""
import re
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj


def _readme_example() -> str:
  """The README's 'Adding an architecture' code block, so the docs cannot rot."""
  readme = open(__file__.rsplit("/tests/", 1)[0] + "/README.md", encoding="utf-8").read()
  section = readme.split("### Adding an architecture", 1)[1]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_registers_a_model_that_works_like_the_built_ins():
  namespace = {}
  exec(compile(_readme_example(), "README.md", "exec"), namespace)  # pylint: disable=exec-used
  model = namespace["model"]
  assert "patch_net" in cj.models.available()
  x = jnp.asarray(np.random.RandomState(0).randn(2, 32, 32, 3), jnp.float32)
  variables = cj.models.initialize(model, jax.random.key(0), x)
  assert cj.models.layer_names(model, variables, x) == ["stem", "block1"]
  logits, taps = cj.models.apply_with_taps(model, variables, x, ["block1"])
  assert logits.shape == (2, 5) and taps["block1"].shape == (2, 8, 8, 128)

  # an explainer works on it unchanged: Grad-CAM at the user's layer
  cam = cj.explain.grad_cam(model, variables, x, layer="block1")
  assert cam.shape == (2, 8, 8) and bool(jnp.all(cam >= 0))
  with pytest.raises(ValueError, match="valid layers: stem, block1"):
    cj.explain.grad_cam(model, variables, x, layer="layer4")

  # the activation swap reaches the user's modules too
  swapped = model.clone(act=lambda z: jnp.zeros_like(z))
  np.testing.assert_allclose(swapped.apply(variables, x),
                             jnp.broadcast_to(variables["params"]["head"]["predictions"]["bias"],
                                              (2, 5)), atol=1e-6)

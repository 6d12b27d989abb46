"""A model without spatial layers (Ross et al.'s MLP) gets a one-line report error, not a crash."""
import jax
import jax.numpy as jnp
import pytest

import cnnviz_jax as cj
from cnnviz_jax.errors import UserInputError
from cnnviz_jax.report import compute


def test_an_mlp_report_says_why_it_cannot_be_drawn():
  model = cj.models.create("mlp", num_classes=10)
  variables = cj.models.initialize(model, jax.random.key(0), jnp.zeros((1, 28, 28, 3)))
  with pytest.raises(UserInputError, match="MLP has none: train it with --noreport"):
    compute.choose_layers(model, variables, (28, 28, 3))

"""Flax linen CNNs found by name; see registry.py to add one."""
from cnnviz_jax.models import layers, resnet, small_cnn, vgg  # noqa: F401  (registers the families)
from cnnviz_jax.models import inception_resnet_v2, inception_v3, xception  # noqa: F401
from cnnviz_jax.models import efficientnet_lite, mlp  # noqa: F401
from cnnviz_jax.models.heads import Head, HeadSpec
from cnnviz_jax.models.initialize import abstract_variables, initialize
from cnnviz_jax.models.registry import available, create, register
from cnnviz_jax.models.taps import (apply_head, apply_with_taps, check_layers, head_inputs,
                                     layer_names, layer_shapes, module_order)

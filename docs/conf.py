"""Sphinx configuration of cnnviz_jax's documentation: the JAX ecosystem's stack (Sphinx,
myst-nb, sphinx-book-theme), notebooks as MyST markdown paired with jupytext.

Build (from the repository root, with `pip install -e '.[docs]'`):
    sphinx-build -W -b html docs docs/_build/html
Every notebook runs at build time on the CPU, offline; jupyter-cache (docs/_build/.jupyter_cache)
reruns only the notebooks whose code changed. Warnings and execution errors fail the build.
"""
import os
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the repository: cnnviz_jax, configs, experiments
sys.path.insert(0, str(DOCS))

# Inherited by the notebooks' kernels: the CPU whatever the machine has, and quiet TensorFlow.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import api_pages  # noqa: E402  pylint: disable=wrong-import-position

api_pages.write(DOCS / "api")

project = "cnnviz_jax"
author = "the cnnviz_jax authors"
copyright = "the cnnviz_jax authors"  # pylint: disable=redefined-builtin
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}

# -- notebooks ------------------------------------------------------------------------------
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True  # and prints its traceback
nb_execution_timeout = 300  # per cell
nb_merge_streams = True
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "cnnviz_jax"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,  # the executed notebook as .ipynb, and its .md source
}
html_static_path = []
# the theme's light/dark mode when the browser has stored none (without it, pydata-sphinx-theme
# logs "invalid theme mode" to the console on a first visit)
html_context = {"default_mode": "auto"}


def setup(app):
  app.connect("autodoc-process-docstring", api_pages.plain_docstring)

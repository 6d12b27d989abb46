"""The README's two commands exist, and CI runs exactly the README's test command."""
import re

from helpers import ROOT


def _commands() -> list[str]:
  section = (ROOT / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_readme_has_exactly_two_commands_demo_then_tests():
  demo, tests = _commands()
  assert "cnnviz_jax.main --config configs/demo.py" in demo and demo.startswith("python3 -m venv")
  assert "pytest tests" in tests and tests.startswith("python3 -m venv")


def test_ci_runs_the_readme_test_command():
  ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
  assert _commands()[1] in ci_lines

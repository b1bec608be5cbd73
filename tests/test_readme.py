"""README.md starts with the two commands a new user runs; CI (``.ci/run``) must run the
second, the test command, exactly as written there."""

from __future__ import annotations

from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_two_commands() -> None:
    setup, tests = _readme_commands()
    assert "nncompress" in setup and "cmp" in setup
    assert tests.endswith("pytest -q -n auto --maxprocesses 8")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    last = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1]
    assert last == _readme_commands()[1]

"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _tested_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-example.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its tested usage example"
    return match.group(1)


def test_readme_example_runs(capsys):
    code = _tested_example()
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 100 and all(line.startswith("reward ") for line in printed)
    assert namespace["envs"].num_envs == 2_000


def test_readme_commands_are_the_ones_ci_runs():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r"```bash\n(python -m venv .*?)\n", text).group(1)
    assert install in ci
    assert "\npytest\n" in ci and "\npytest " in text

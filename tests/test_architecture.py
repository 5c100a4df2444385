"""Structure rules that are not imports (those are import-linter's contracts in pyproject.toml, run by .ci/run)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aimcbench"
MAX_LINES = 400  # a module longer than this holds more than one idea; split it by topic


def test_no_module_over_the_line_limit():
    sizes = {p.relative_to(PACKAGE.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert len(sizes) > 20  # the walk found the package
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"

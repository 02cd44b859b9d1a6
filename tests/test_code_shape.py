"""Code shape: no function in src/ over MAX_LINES lines (issue 15), so each one can be read whole."""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 80
SRC = Path(__file__).resolve().parent.parent / "src"


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    """`path:line name (N lines)` for every function or method longer than `limit` lines,
    counted from its `def` line to its last line (nested functions count in their parent too)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_80_lines() -> None:
    too_long = long_functions(SRC)
    assert not too_long, f"functions over {MAX_LINES} lines (split them by concern):\n" + "\n".join(too_long)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n", encoding="utf-8")
    assert long_functions(tmp_path) == [f"m.py:5 long ({MAX_LINES + 1} lines)"]

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


def _package_of(module: str) -> str:
    """llmplan.perf.cases → llmplan.perf; a top-level module is its own package."""
    parts = module.split(".")
    return ".".join(parts[:2])


def private_imports_across_packages(root: Path) -> list[str]:
    """`path:line name from module` for every `from X import _name` where X is in another package
    of llmplan than the importing module (a private helper is its package's own business)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("llmplan") or _package_of(source) == _package_of(module):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    out.append(f"{rel}.py:{node.lineno} {alias.name} from {source}")
    return out


def test_no_private_helper_is_imported_from_another_package() -> None:
    found = private_imports_across_packages(SRC)
    assert not found, "make these public in their package or move them:\n" + "\n".join(found)


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    (tmp_path / "llmplan" / "a").mkdir(parents=True)
    (tmp_path / "llmplan" / "b").mkdir()
    (tmp_path / "llmplan" / "a" / "x.py").write_text("def _h():\n    pass\n", encoding="utf-8")
    (tmp_path / "llmplan" / "a" / "y.py").write_text("from .x import _h\n", encoding="utf-8")
    (tmp_path / "llmplan" / "b" / "z.py").write_text("from ..a.x import _h\n", encoding="utf-8")
    assert private_imports_across_packages(tmp_path) == ["llmplan/b/z.py:1 _h from llmplan.a.x"]


def test_estimates_do_not_load_the_benchmark_csv_or_fitting_code() -> None:
    """The runtime path (every estimate, simulation, TCO and plan) reads the calibration from the
    catalog (perf/efficiency.py); reading benchmark CSVs (perf/cases.py) and fitting
    (perf/calibrate.py, scipy.optimize) are for `llmplan validate` and `llmplan calibrate`."""
    import subprocess
    import sys

    code = ("import sys, llmplan.api, llmplan.planner.search, llmplan.serving.api, llmplan.cost.tco; "
            "print(sorted(m for m in ('llmplan.perf.cases', 'llmplan.perf.calibrate', 'scipy.optimize') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.stdout.strip() == "[]"

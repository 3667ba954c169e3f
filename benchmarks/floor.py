"""The physical floor of a cold qlint run on a code base: reading every Python file qlint
discovers, plus CPython's ``compile`` (to a syntax tree) of the files qlint parses, in one process.

Which files qlint parses is asked of qlint itself first (not timed): a cold run over the same
tree, whose linter keeps the sources it parsed. The timed part then does only what no linter of
this design can skip, so ``qlint cold / floor`` is how far qlint's own work is from it.

    python benchmarks/floor.py path/to/codebase     # prints "floor: read N files, compile M: S s"
"""

from __future__ import annotations

import ast
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parsed_and_discovered(codebase: Path) -> tuple[list[Path], list[Path]]:
    from qlint.lint.discovery import discover
    from qlint.lint.engine import Linter
    from qlint.lint.registry import select_rules
    from qlint.settings import load_settings

    settings = load_settings(None, [codebase])
    found = discover([codebase], settings)
    linter = Linter(settings, select_rules(None), cache=None)
    linter.load(found.python)  # as ``qlint check`` at the root: the call-site closure included
    linter.lint()  # modules resolved on demand while collecting are parsed too
    return sorted(Path(p) for p in linter.sources if p.endswith((".py", ".pyi"))), list(found.python)


def main() -> int:
    codebase = Path(sys.argv[1]).resolve()
    os.chdir(codebase)
    parsed, discovered = parsed_and_discovered(codebase)
    start = time.perf_counter()
    data = {}
    for path in discovered:
        try:
            data[path] = path.read_bytes()
        except OSError:
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in parsed:
            try:
                compile(data.get(path) or path.read_bytes(), str(path), "exec", ast.PyCF_ONLY_AST)
            except (SyntaxError, ValueError):
                pass
    elapsed = time.perf_counter() - start
    print(f"floor: read {len(data)} files, compile {len(parsed)}: {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

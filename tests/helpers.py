"""Lint a project given as {relative path: source} in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

from qlint.lint.discovery import classify
from qlint.lint.engine import Linter
from qlint.lint.fixing import fix_loop
from qlint.lint.registry import all_rules, select_rules
from qlint.settings import Settings


# Every rule: ``ALL`` and the opt-in rules, which only their exact codes enable.
EVERY_RULE = ["ALL", *sorted(r.code for r in all_rules() if r.opt_in)]


def norm(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write_project(root: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(norm(text), encoding="utf-8")
        paths.append(path)
    return sorted(paths)


def make_linter(root: Path, codes: list[str] | None = None, *, use_prefilter: bool = True, **settings) -> Linter:
    s = Settings(root=root, **settings)
    rules = select_rules(codes, (), ()) if codes is not None else select_rules(None)
    linter = Linter(s, rules, use_prefilter=use_prefilter)
    linter.load(sorted(p for p in root.rglob("*.py")))
    linter.load_manifests(sorted(p for p in root.rglob("*")
                                 if p.is_file() and classify(p) in ("yaml", "procfile", "script", "terraform")))
    return linter


def findings(root: Path, codes: list[str] | None = None, **kw):
    linter = make_linter(root, codes, **kw)
    diags = linter.lint()
    return [(Path(d.path).relative_to(root).as_posix(), d.location.row, d.code, d.message) for d in diags]


def fix(root: Path, codes: list[str] | None = None, unsafe: bool = True, **kw):
    linter = make_linter(root, codes, **kw)
    outcome = fix_loop(linter, unsafe)
    return outcome

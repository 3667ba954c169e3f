"""``--output-format json`` and ``json-lines``: ruff's JSON objects, so ruff tooling can read them.

Keys and their order follow ruff 0.17's ``render/json.rs`` (alphabetical, ``cell`` is always
null because qlint reads no notebooks). Locations are 1-based; ``end_location`` is
exclusive. ``filename`` is absolute, as in ruff. Every fix is included with its
``applicability`` whether or not it would apply in this run, as ruff does.
"""

from __future__ import annotations

import json
from pathlib import Path

from qlint.lint.diagnostics import Diagnostic, Edit, Fix
from qlint.lint.source import Location
from qlint.report._common import absolute_path


def _location(location: Location | None) -> dict | None:
    if location is None:
        return None
    return {"column": location.column, "row": location.row}


def _edit(edit: Edit, root: Path) -> dict:
    data = {"content": edit.content, "end_location": _location(edit.end_location),
            "location": _location(edit.location)}
    if edit.path:  # an edit in another file than the finding's (qlint's extension of ruff's format)
        data["filename"] = str(absolute_path(Path(edit.path), root))
    return data


def fix_to_dict(fix: Fix | None, root: Path = Path(".")) -> dict | None:
    if fix is None:
        return None
    edits = sorted(fix.edits, key=lambda e: (e.path or "", e.start, e.end))
    return {"applicability": fix.applicability.value, "edits": [_edit(e, root) for e in edits],
            "message": fix.message or None}


def diagnostic_to_dict(d: Diagnostic, *, rules: dict, root: Path) -> dict:
    rule = rules.get(d.code)
    return {
        "cell": None,
        "code": d.code,
        "end_location": _location(d.end_location),
        "filename": str(absolute_path(d.path, root)),
        "fix": fix_to_dict(d.fix, root),
        "location": _location(d.location),
        "message": d.message,
        "name": d.name,
        "noqa_row": d.location.row,
        "severity": d.severity.value,
        "url": rule.url() if rule is not None else None,
    }


def render_json(diagnostics: list[Diagnostic], *, rules: dict, root: Path) -> str:
    objects = [diagnostic_to_dict(d, rules=rules, root=root) for d in diagnostics]
    return json.dumps(objects, indent=2, ensure_ascii=False) + "\n"


def render_json_lines(diagnostics: list[Diagnostic], *, rules: dict, root: Path) -> str:
    return "".join(
        json.dumps(diagnostic_to_dict(d, rules=rules, root=root), ensure_ascii=False,
                   separators=(",", ":")) + "\n"
        for d in diagnostics
    )

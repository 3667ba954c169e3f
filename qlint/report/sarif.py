"""``--output-format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Choices and why:

* ``tool.driver.rules`` lists every rule that ran, not only those that fired, so code
  scanning can show rule help and close alerts for rules that stop firing.
* Files under ``root`` get a relative ``uri`` with ``uriBaseId: %SRCROOT%`` (GitHub
  recommends repo-relative paths; alerts are keyed on them). Other files get an absolute
  ``file://`` URI as ruff emits.
* ``columnKind`` is ``unicodeCodePoints`` because qlint's columns count characters, while
  SARIF's default is UTF-16 code units.
* A fix is emitted as ``fixes[].artifactChanges[].replacements`` (as ruff does) only when
  every edit carries its row/column locations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import qlint
from qlint.lint.diagnostics import Diagnostic, Fix, Severity
from qlint.report._common import absolute_path, relative_to_root

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _level(severity) -> str:
    try:
        return LEVEL[Severity(severity)]
    except ValueError:
        return "warning"


def artifact_location(path: Path, root: Path) -> dict:
    relative = relative_to_root(path, root)
    if relative is not None:
        return {"uri": quote(relative.as_posix(), safe="/"), "uriBaseId": SRCROOT}
    return {"uri": absolute_path(path, root).as_uri()}


def root_uri(root: Path) -> str:
    uri = Path(os.path.abspath(root)).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _descriptor(rule) -> dict:
    summary = rule.summary or rule.name or rule.code
    explanation = rule.explanation() or summary
    descriptor = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": explanation},
        "help": {"text": explanation, "markdown": explanation},
        "defaultConfiguration": {"level": _level(rule.severity)},
    }
    url = rule.url()
    if url:  # SARIF wants a URI or nothing
        descriptor["helpUri"] = url
    return descriptor


def _region(start, end) -> dict:
    return {"startLine": start.row, "startColumn": start.column,
            "endLine": end.row, "endColumn": end.column}


def _fix(fix: Fix, path: Path, root: Path) -> dict | None:
    if any(e.location is None or e.end_location is None for e in fix.edits) or not fix.edits:
        return None
    changes = []
    for target, edits in fix.parts(str(path)).items():  # one artifact change per file it edits
        replacements = [{"deletedRegion": _region(e.location, e.end_location),
                         "insertedContent": {"text": e.content}} for e in edits]
        changes.append({"artifactLocation": artifact_location(Path(target), root), "replacements": replacements})
    result = {"artifactChanges": changes}
    if fix.message:
        result["description"] = {"text": fix.message}
    return result


def _result(d: Diagnostic, *, index: dict[str, int], root: Path) -> dict:
    location = artifact_location(d.path, root)
    result: dict = {"ruleId": d.code}
    if d.code in index:
        result["ruleIndex"] = index[d.code]
    result["level"] = _level(d.severity)
    result["message"] = {"text": d.message or d.code}
    result["locations"] = [{"physicalLocation": {
        "artifactLocation": location, "region": _region(d.location, d.end_location)}}]
    fix = _fix(d.fix, d.path, root) if d.fix is not None else None
    if fix is not None:
        result["fixes"] = [fix]
    return result


def build_sarif(diagnostics: list[Diagnostic], *, rules: dict, root: Path) -> dict:
    ordered = [rules[code] for code in sorted(rules)]
    index = {rule.code: i for i, rule in enumerate(ordered)}
    # No ``informationUri``: qlint has no public home page to name yet, and a made-up one would
    # send a code-scanning user nowhere.
    driver = {"name": "qlint", "version": qlint.__version__, "rules": [_descriptor(rule) for rule in ordered]}
    run = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {SRCROOT: {"uri": root_uri(root)}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index=index, root=root) for d in diagnostics],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(diagnostics: list[Diagnostic], *, rules: dict, root: Path) -> str:
    return json.dumps(build_sarif(diagnostics, rules=rules, root=root), indent=2,
                      ensure_ascii=False) + "\n"

"""Run qlint over real code bases and tabulate what it did: a script, not a test.

    python benchmarks/real_projects.py /path/to/project [/path/to/another ...] [--out FILE]

For each project: Python files, files parsed (candidates plus the modules their facts
reached), manifests read and YAML files skipped (templates, non-manifests), wall time of a cold run (``--no-cache``), findings per rule with every rule
selected (opt-in ones included), files qlint could not check, and internal errors (which
must stay at zero). The table is printed, and written to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"qlint: (\d+) Python files? checked, (\d+) parsed .*?(\d+) manifests read, (\d+) skipped")


# Opt-in rules are enabled only by their exact codes (a prefix such as ALL does not).
OPT_IN = ",".join(sorted(r.code for r in __import__("qlint.lint.registry", fromlist=["all_rules"]).all_rules()
                         if r.opt_in))


def qlint_command() -> list[str]:
    return [sys.executable, "-m", "qlint"]


def run(project: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([*qlint_command(), "check", ".", "--no-cache", "--select", "ALL", "--extend-select", OPT_IN, "--output-format",
                           "json", "--verbose"], cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    findings = json.loads(proc.stdout or "[]")
    summary = SUMMARY.search(proc.stderr)
    return {
        "project": project.name,
        "files": int(summary.group(1)) if summary else None,
        "parsed": int(summary.group(2)) if summary else None,
        "manifests": int(summary.group(3)) if summary else None,
        "skipped": int(summary.group(4)) if summary else None,
        "seconds": elapsed,
        "rules": Counter(f["code"] for f in findings),
        "unchecked": len(re.findall(r"^qlint: error: ", proc.stderr, flags=re.MULTILINE)),
        "internal": len(re.findall(r"internal error", proc.stderr)),
        "exit": proc.returncode,
    }


def table(rows: list[dict]) -> str:
    lines = [f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}; "
             "cold runs (`--no-cache`), every rule selected.", "",
             "| project | Python files | parsed | manifests read | YAML skipped | seconds | findings per rule | "
             "unchecked | internal errors |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        rules = ", ".join(f"{code} {n}" for code, n in sorted(r["rules"].items())) or "none"
        lines.append(f"| {r['project']} | {r['files']} | {r['parsed']} | {r['manifests']} | {r['skipped']} | "
                     f"{r['seconds']:.1f} | {rules} | {r['unchecked']} | {r['internal']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = [run(p.resolve()) for p in args.projects]
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 1 if any(r["internal"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())

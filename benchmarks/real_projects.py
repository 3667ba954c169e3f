"""Run qlint over real code bases and tabulate what it did: a script, not a test.

    python benchmarks/real_projects.py /path/to/project [...] [--out FILE]
    python benchmarks/real_projects.py /path/to/project [...] --review benchmarks/review.json \\
        [--out FILE] [--unreviewed]

For each project: Python files, files parsed (candidates plus the modules their facts
reached), files that are non-production (context only), manifests read and YAML files skipped
(templates, non-manifests), wall time of a cold run (``--no-cache``), findings per rule with
every rule selected (opt-in ones included by their codes), files qlint could not check, and
internal errors (which must stay at zero).

With ``--review``, every finding of the *default* rules is matched to a maintainer's verdict
recorded in the review file: "kept" (the project's maintainers would keep it: true, and worth
acting on) or "noise" with the reason. A verdict is keyed by the project, the file, the code and
a digest of the flagged line, so it holds while the code base does not change and never stores
the code itself. The review table gives, per project and rule, kept / findings, and the checks
the signal issue asks for: the share kept, findings in non-production paths (judged by the
path, independently of qlint's classifier) and the most findings of one code in one code base.
``--unreviewed`` prints the findings that have no verdict yet, for the reviewer to read.
The review file may also record, per project, how many tasks the code declares (counted by
reading it, not by qlint): the table then shows tasks found / declared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SUMMARY = re.compile(r"qlint: (\d+) Python files? checked, (\d+) parsed .*?(\d+) manifests read, (\d+) skipped, "
                     r"(\d+) non-production")

# A path a reader calls test, example, docs, benchmark or fixture code (not qlint's classifier).
NON_PRODUCTION_PART = re.compile(r"^(tests?|testing|t|examples?|docs?|benchmarks?|fixtures|\.semgrep|[^/]*_tests?)$")
NON_PRODUCTION_FILE = re.compile(r"^(test_.*|.*_tests?\.py|conftest\.py|tests?\.py|docker-compose\.tests?\.ya?ml|"
                                 r".*\.test\.ya?ml)$")


def opt_in_codes() -> str:
    """Opt-in rules are enabled only by their exact codes (a prefix such as ALL does not)."""
    from qlint.lint.registry import all_rules

    return ",".join(sorted(r.code for r in all_rules() if r.opt_in))


def qlint_command() -> list[str]:
    return [sys.executable, "-m", "qlint"]


def _qlint(project: Path, *select: str) -> tuple[list[dict], str, float, int]:
    start = time.perf_counter()
    proc = subprocess.run([*qlint_command(), "check", ".", "--no-cache", *select, "--output-format", "json",
                           "--verbose"], cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    return json.loads(proc.stdout or "[]"), proc.stderr, elapsed, proc.returncode


def run(project: Path) -> dict:
    findings, stderr, elapsed, code = _qlint(project, "--select", "ALL", "--extend-select", opt_in_codes())
    summary = SUMMARY.search(stderr)
    return {
        "project": project.name,
        "files": int(summary.group(1)) if summary else None,
        "parsed": int(summary.group(2)) if summary else None,
        "manifests": int(summary.group(3)) if summary else None,
        "skipped": int(summary.group(4)) if summary else None,
        "context": int(summary.group(5)) if summary else None,
        "seconds": elapsed,
        "rules": Counter(f["code"] for f in findings),
        "unchecked": len(re.findall(r"^qlint: error: ", stderr, flags=re.MULTILINE)),
        "internal": len(re.findall(r"internal error", stderr)),
        "exit": code,
    }


def table(rows: list[dict]) -> str:
    lines = [f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}; "
             "cold runs (`--no-cache`), every rule selected (opt-in ones by their codes).", "",
             "| project | Python files | parsed | non-production | manifests read | YAML skipped | seconds | "
             "findings per rule | unchecked | internal errors |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        rules = ", ".join(f"{code} {n}" for code, n in sorted(r["rules"].items())) or "none"
        lines.append(f"| {r['project']} | {r['files']} | {r['parsed']} | {r['context']} | {r['manifests']} | "
                     f"{r['skipped']} | {r['seconds']:.1f} | {rules} | {r['unchecked']} | {r['internal']} |")
    return "\n".join(lines) + "\n"


# -- the review ------------------------------------------------------------------------------

def finding_key(project: Path, finding: dict) -> tuple[str, str, str]:
    """(path, code, digest of the flagged line): stable while the code base is unchanged."""
    path = Path(finding["filename"])
    rel = path.relative_to(project).as_posix() if path.is_relative_to(project) else path.as_posix()
    try:
        line = path.read_text(encoding="utf-8", errors="replace").splitlines()[finding["location"]["row"] - 1]
    except (OSError, IndexError):
        line = ""
    digest = hashlib.blake2b(f"{finding['code']}\0{line.strip()}".encode(), digest_size=6).hexdigest()
    return rel, finding["code"], digest


def non_production(rel: str) -> bool:
    parts = rel.split("/")
    return any(NON_PRODUCTION_PART.match(p) for p in parts[:-1]) or bool(NON_PRODUCTION_FILE.match(parts[-1]))


def tasks_found(project: Path) -> int:
    proc = subprocess.run([*qlint_command(), "tasks", ".", "--no-cache", "--output-format", "json"], cwd=project,
                          capture_output=True, text=True)
    try:
        return len(json.loads(proc.stdout or "[]"))
    except json.JSONDecodeError:
        return 0


def review(projects: list[Path], verdicts: dict, show_unreviewed: bool) -> tuple[str, list[str]]:
    per_rule: dict[str, Counter] = defaultdict(Counter)
    rows, unreviewed, reasons = [], [], Counter()
    totals = Counter()
    worst = (0, "", "")
    for project in projects:
        findings, _, _, _ = _qlint(project)  # the default rules
        recorded = verdicts.get(project.name, {})
        judged = {(v["path"], v["code"], v["digest"]): v for v in recorded.get("findings", [])}
        counts = Counter(f["code"] for f in findings)
        for code, n in counts.items():
            if n > worst[0]:
                worst = (n, code, project.name)
        kept = noise = missing = misplaced = 0
        for f in findings:
            key = finding_key(project, f)
            if non_production(key[0]):
                misplaced += 1
            verdict = judged.get(key)
            if verdict is None:
                missing += 1
                per_rule[f["code"]]["unreviewed"] += 1
                unreviewed.append(f"{project.name} {key[0]}:{f['location']['row']} {f['code']} [{key[2]}] "
                                  f"{f['message']}")
            elif verdict["verdict"] == "kept":
                kept += 1
                per_rule[f["code"]]["kept"] += 1
            else:
                noise += 1
                per_rule[f["code"]]["noise"] += 1
                reasons[f"{f['code']}: {verdict.get('reason', '')}"] += 1
            per_rule[f["code"]]["total"] += 1
        declared = recorded.get("tasks_declared")
        found = tasks_found(project) if declared is not None else None
        totals.update(kept=kept, noise=noise, missing=missing, misplaced=misplaced, total=len(findings),
                      found=min(found, declared) if found is not None else 0, declared=declared or 0)
        reach = f"{found} / {declared}" if declared is not None else "-"
        top = ", ".join(f"{code} {n}" for code, n in counts.most_common(3)) or "none"
        rows.append(f"| {project.name} | {len(findings)} | {kept} | {noise} | {missing} | {misplaced} | {top} | "
                    f"{reach} |")
    out = ["| project | default findings | kept | noise | unreviewed | in non-production paths | most per code | "
           "tasks found / declared |", "|---|---:|---:|---:|---:|---:|---|---:|", *rows, ""]
    judged_total = totals["kept"] + totals["noise"]
    share = f"{100 * totals['kept'] / judged_total:.0f} %" if judged_total else "-"
    out += [f"Kept: {totals['kept']} of {judged_total} judged findings ({share}); unreviewed: {totals['missing']}; "
            f"in non-production paths: {totals['misplaced']}; most findings of one code in one code base: "
            f"{worst[0]} ({worst[1]} in {worst[2]})." if worst[0] else "No findings.", ""]
    if totals["declared"]:
        out += [f"Tasks found / declared: {totals['found']} / {totals['declared']} "
                f"({100 * totals['found'] / totals['declared']:.0f} %).", ""]
    out += ["| rule | findings | kept | noise | unreviewed |", "|---|---:|---:|---:|---:|"]
    for code in sorted(per_rule):
        c = per_rule[code]
        out.append(f"| {code} | {c['total']} | {c['kept']} | {c['noise']} | {c['unreviewed']} |")
    if reasons:
        out += ["", "Noise, by reason:", ""]
        out += [f"- {reason} ({n})" for reason, n in reasons.most_common()]
    return "\n".join(out) + "\n", unreviewed if show_unreviewed else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--review", type=Path, help="verdicts (JSON): review the default rules' findings")
    parser.add_argument("--unreviewed", action="store_true", help="print the findings that have no verdict yet")
    args = parser.parse_args(argv)
    projects = [p.resolve() for p in args.projects]
    if args.review:
        verdicts = json.loads(args.review.read_text(encoding="utf-8")) if args.review.is_file() else {}
        text, unreviewed = review(projects, verdicts, args.unreviewed)
        print(text)
        for line in unreviewed:
            print(line)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    rows = [run(p) for p in projects]
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 1 if any(r["internal"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())

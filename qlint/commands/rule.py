"""``qlint rule CODE`` / ``qlint rule --all``: rule documentation, as ``ruff rule`` prints it."""

from __future__ import annotations

import argparse
import json
import sys

from qlint.errors import UsageError
from qlint.lint.registry import Rule, all_rules, get_rule

FIX_SENTENCES = {
    "Always": "Fix is always available.",
    "Sometimes": "Fix is sometimes available.",
    "None": "",
}


def markdown(rule: type[Rule]) -> str:
    lines = [f"# {rule.name} ({rule.code})", ""]
    frameworks = ", ".join(rule.frameworks)
    default = f"opt-in (enabled only by its exact code: `--extend-select {rule.code}`)" if rule.opt_in else "on"
    lines.append(f"Frameworks: {frameworks}. Default: {default}. Severity: {rule.severity.value}.")
    lines.append("")
    if FIX_SENTENCES[rule.fix_availability]:
        lines += [FIX_SENTENCES[rule.fix_availability], ""]
    lines.append(rule.explanation())
    return "\n".join(lines).rstrip() + "\n"


def as_json(rule: type[Rule]) -> dict:
    return {
        "name": rule.name,
        "code": rule.code,
        "linter": "qlint",
        "summary": rule.summary,
        "message_formats": [rule.summary],
        "fix": FIX_SENTENCES[rule.fix_availability] or "Fix is not available.",
        "fix_availability": rule.fix_availability,
        "explanation": rule.explanation() + "\n",
        "default_enabled": not rule.opt_in,
        "severity": rule.severity.value,
        "frameworks": list(rule.frameworks),
        "url": rule.url(),
    }


def run_rule(args: argparse.Namespace) -> int:
    if args.all:
        rules = all_rules()
    elif args.code:
        rule = get_rule(args.code)
        if rule is None:
            raise UsageError(f"unknown rule `{args.code}`: give a code or a name (see `qlint rule --all`)")
        rules = [rule]
    else:
        raise UsageError("give a rule code or name (e.g. `qlint rule QLT101`) or `--all`")
    if args.output_format == "json":
        payload = [as_json(r) for r in rules] if args.all else as_json(rules[0])
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(markdown(r) for r in rules))
    return 0

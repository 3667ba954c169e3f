"""Command line: ``qlint check``, ``qlint rule``, ``qlint --version``.

Exit codes follow ruff: 0 nothing left to report, 1 findings remain, 2 usage,
configuration or internal error. Anything a user can cause gets a message, never a
traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from pathlib import Path

from qlint import __version__
from qlint.errors import UsageError
from qlint.lint.registry import validate_selector
from qlint.settings import OUTPUT_FORMATS, ConfigError

SUBCOMMANDS = ("check", "rule", "tasks")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors, as ruff does
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(f"{message}"))


def _fail(message: str) -> int:
    for line in message.splitlines() or [""]:
        print(f"qlint: error: {line}", file=sys.stderr)
    return 2


def _codes(value: str) -> list[str]:
    items = [v.strip().upper() for v in value.split(",") if v.strip()]
    for item in items:
        try:
            validate_selector(item)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qlint", description="A linter for background-task code and its deployment manifests.")
    parser.add_argument("--version", action="version", version=f"qlint {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = sub.add_parser("check", help="Lint files and folders (the default command).")
    check.add_argument("paths", nargs="*", type=Path, help="Files or folders to check; `-` reads stdin. Default: `.`")
    check.add_argument("--select", type=_codes, action="extend", default=None,
                       help="Comma-separated rule codes or prefixes to enable (replaces the default set).")
    check.add_argument("--extend-select", type=_codes, action="extend", default=None,
                       help="Codes or prefixes to enable in addition.")
    check.add_argument("--ignore", type=_codes, action="extend", default=None, help="Codes or prefixes to disable.")
    check.add_argument("--fix", action=argparse.BooleanOptionalAction, default=False,
                       help="Apply fixes (safe ones; with --unsafe-fixes, unsafe ones too).")
    check.add_argument("--unsafe-fixes", action=argparse.BooleanOptionalAction, default=None,
                       help="Include fixes that may change behaviour.")
    check.add_argument("--diff", action="store_true", help="Show the fixes as a diff and write nothing.")
    check.add_argument("--add-noqa", action="store_true",
                       help="Add `# noqa: CODES` to every line with a finding, instead of reporting them (no fixes).")
    check.add_argument("--exit-zero", action="store_true", help="Exit 0 even when findings remain.")
    check.add_argument("--exit-non-zero-on-fix", action="store_true",
                       help="Exit 1 when anything was fixed, even if nothing remains.")
    check.add_argument("--statistics", action="store_true", help="Show counts per rule instead of findings.")
    check.add_argument("--output-format", choices=OUTPUT_FORMATS, default=None,
                       help="Output format (default: full, or `output-format` in the configuration).")
    check.add_argument("-o", "--output-file", type=Path, default=None, help="Write the report to this file.")
    check.add_argument("--no-cache", action="store_true", help="Do not read or write the fact cache.")
    check.add_argument("--force-exclude", action="store_true",
                       help="Apply excludes to files named on the command line too (for pre-commit).")
    check.add_argument("--config", type=Path, default=None, help="Path to a qlint.toml or pyproject.toml.")
    check.add_argument("-q", "--quiet", action="store_true", help="Print findings only, no summary.")
    check.add_argument("-v", "--verbose", action="store_true",
                       help="Also print what was read: files checked, parsed, taken from the cache, time.")
    check.add_argument("--stdin-filename", type=Path, default=None,
                       help="The name of the file read from stdin (for excludes, module names and output).")

    rule = sub.add_parser("rule", help="Show a rule's documentation.")
    rule.add_argument("code", nargs="?", help="A rule code or name, such as QLT101 or task-unbounded-runtime.")
    rule.add_argument("--all", action="store_true", help="Show every rule.")
    rule.add_argument("--output-format", choices=("text", "json"), default="text")

    # -- qlint tasks (qlint.commands.tasks) --
    tasks = sub.add_parser("tasks", help="List every task with its effective options and where each came from.")
    tasks.add_argument("paths", nargs="*", type=Path, help="Files or folders to read. Default: `.`")
    tasks.add_argument("--output-format", choices=("table", "json", "csv"), default="table",
                       help="Output format (default: table).")
    tasks.add_argument("-o", "--output-file", type=Path, default=None, help="Write the inventory to this file.")
    tasks.add_argument("--no-cache", action="store_true", help="Do not read or write the fact cache.")
    tasks.add_argument("--config", type=Path, default=None, help="Path to a qlint.toml or pyproject.toml.")
    # -- end qlint tasks --
    return parser


def normalize_argv(argv: list[str]) -> list[str]:
    """``qlint [PATHS] [options]`` means ``qlint check``, so ``qlint --fix`` works."""
    if not argv:
        return ["check"]
    first = argv[0]
    if first in SUBCOMMANDS or first in ("-h", "--help", "--version"):
        return argv
    return ["check", *argv]


def main(argv: list[str] | None = None) -> int:
    """The ``qlint`` command. Called without ``argv`` (as the console script), the process ends
    here once the output is flushed: tearing down a run's objects took longer than some runs."""
    console = argv is None
    enabled = gc.isenabled()
    # A run builds hundreds of thousands of short-lived, acyclic objects (syntax trees, facts):
    # the cyclic collector's passes over them were a third of a cold run and free nothing.
    gc.disable()
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        if enabled and not console:
            gc.enable()
    if console:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (``| head``), a closed stream
                pass
        os._exit(code)
    return code


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(normalize_argv(argv))
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        if args.command == "tasks":  # qlint.commands.tasks
            from qlint.commands.tasks import run_tasks

            return run_tasks(args)
        if args.command == "rule":
            from qlint.commands.rule import run_rule

            return run_rule(args)
        from qlint.commands.check import run_check

        return run_check(args)
    except (ConfigError, UsageError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - an internal error: say so, with the trace, and exit 2
        print("qlint: internal error (please report it with the trace below)", file=sys.stderr)
        traceback.print_exc()
        return 2


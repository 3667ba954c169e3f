"""``qlint check``: discover, lint (or fix), report, choose the exit code."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from pathlib import Path

from qlint.errors import UsageError
from qlint.lint.atomic import write_source
from qlint.lint.cache import FactCache
from qlint.lint.discovery import discover, is_excluded
from qlint.lint.engine import FileError, Linter
from qlint.lint.fixing import fix_loop
from qlint.lint.paths import real_path
from qlint.lint.registry import select_rules
from qlint.lint.source import SourceFile, UndecodableSource
from qlint.report import HUMAN_FORMATS, Summary, render, render_statistics
from qlint.report.output import display, emit, print_errors, unchecked
from qlint.settings import Settings, load_settings

STDIN = Path("-")


def _settings(args: argparse.Namespace) -> Settings:
    anchor = [args.stdin_filename] if args.stdin_filename else [p for p in args.paths if p != STDIN]
    settings = load_settings(args.config, anchor)
    return settings.with_overrides(
        select=args.select,
        extend_select=(settings.extend_select + args.extend_select) if args.extend_select else None,
        ignore=(settings.ignore + args.ignore) if args.ignore else None,
        unsafe_fixes=args.unsafe_fixes,
        output_format=args.output_format,
    )


def _whole_project(paths: list[Path], settings: Settings) -> bool:
    """The paths name the project root itself: what they hold is the whole project."""
    root = os.path.realpath(settings.root)
    return all(os.path.realpath(p) == root for p in paths)


def _union(first: list[Path], second: list[Path], skip: set[str]) -> list[Path]:
    """Both lists, each file once (a symlinked duplicate too), without ``skip`` (real paths)."""
    seen = set(skip)
    out = []
    for p in (*first, *second):
        real = real_path(p)
        if real not in seen:
            seen.add(real)
            out.append(p)
    return out


def run_check(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = _settings(args)
    rules = select_rules(settings.select, settings.extend_select, settings.ignore)
    rule_map = {r.code: r for r in rules}
    fmt = settings.output_format
    unsafe = settings.unsafe_fixes
    fix_mode = args.fix or args.diff
    add_noqa = getattr(args, "add_noqa", False)
    cwd = Path.cwd()
    paths = args.paths or [Path(".")]
    cache = None if args.no_cache or os.environ.get("QLINT_NO_CACHE") else FactCache(settings.root, read_only=args.diff)
    linter = Linter(settings, rules, cache=cache)
    errors: list[FileError] = []
    stdin_src: SourceFile | None = None

    if add_noqa and (fix_mode or STDIN in paths):  # --add-noqa (qlint.commands.add_noqa)
        raise UsageError("`--add-noqa` cannot be combined with `--fix`, `--diff` or stdin (`-`)")
    if STDIN in paths and len(paths) > 1:
        raise UsageError("`-` (stdin) cannot be combined with other paths")
    stdin_path = None
    if STDIN in paths:
        name = args.stdin_filename or Path("stdin.py")
        stdin_path = (cwd / name) if not name.is_absolute() else name
        raw = sys.stdin.buffer.read()
        stdin_raw = raw
        if args.force_exclude and is_excluded(stdin_path, settings):
            if args.fix and not args.diff:
                sys.stdout.buffer.write(raw)
            return 0
        found = None
        checked = {str(stdin_path)}
        stdin_kind = "manifest" if stdin_path.suffix in (".yaml", ".yml") or stdin_path.name.startswith(
            "Procfile") else "python" if stdin_path.suffix in (".py", ".pyi") or args.stdin_filename is None else None
        python_count = 1 if stdin_kind == "python" else 0
    else:
        found = discover([Path(os.path.abspath(p)) for p in paths], settings, force_exclude=args.force_exclude)
        errors.extend(FileError(p, msg) for p, msg in found.errors)
        checked = {str(p) for p in found.python}
        python_count = len(found.python)
        linter.named = {os.path.abspath(p) for p in paths if Path(p).is_file()}
    # The whole project is read, whatever was named (pre-commit and editors name files, CI a
    # folder): a limit in the app's configuration module counts for a task in a named file, and
    # an app-level finding counts every task of the app. Only what was named is reported.
    project = found if found is not None and _whole_project(paths, settings) else \
        discover([settings.root], settings)
    skip = {os.path.realpath(stdin_path)} if stdin_path is not None else set()
    # The named spelling of a file first: a symlink named on the command line is reported (and
    # fixed) as named, not as the file it points to.
    python = _union(found.python if found is not None else [], project.python, skip)
    named_manifests = [*found.yaml, *found.procfiles, *found.scripts, *found.terraform] if found is not None else []
    manifest_paths = _union(named_manifests, [*project.yaml, *project.procfiles, *project.scripts, *project.terraform],
                            skip)
    linter.load(python)
    linter.load_manifests(manifest_paths)
    if found is not None:
        checked |= {str(p) for p in (*found.yaml, *found.procfiles, *found.scripts, *found.terraform)}
    elif stdin_kind == "manifest":
        linter.checked += 1
        linter.add_manifest(stdin_path, raw)
    elif stdin_kind == "python":
        try:
            stdin_src = SourceFile.from_bytes(stdin_path, raw)
        except UndecodableSource as exc:
            errors.append(FileError(stdin_path, str(exc)))
        else:
            linter.add_source(stdin_src)
    path = stdin_path

    if add_noqa:  # suppress every finding in place instead of reporting it (qlint.commands.add_noqa)
        from qlint.commands.add_noqa import run_add_noqa

        return run_add_noqa(linter, checked, errors, quiet=args.quiet, cwd=cwd)
    if fix_mode:
        outcome = fix_loop(linter, unsafe, only=checked)
        errors.extend(outcome.errors)
        remaining = outcome.remaining
        fixed = outcome.count
        if args.diff:
            _print_diffs(outcome, cwd)
        elif STDIN in paths:
            # As ruff: ``--fix -`` prints the input, fixed where qlint could fix it (YAML and
            # other files qlint has no fixes for come back unchanged).
            new = outcome.fixed.get(str(stdin_src.path) if stdin_src is not None else str(path))
            sys.stdout.buffer.write(new.raw if new is not None else stdin_raw)
        else:
            for key, new in outcome.fixed.items():
                try:
                    write_source(Path(key), new.raw)
                except OSError as exc:
                    errors.append(FileError(Path(key), f"cannot write fixes: {exc.strerror or exc}"))
                    fixed -= outcome.per_file.get(key, 0)
    else:
        remaining = linter.lint()
        fixed = 0
    # Files read only for context (not named, not under a named folder) are not ours to report.
    errors.extend(e for e in linter.errors if str(e.path) in checked)
    remaining = [d for d in remaining if str(d.path) in checked]

    # Test, example and docs files are context only (qlint.lint.production): say so when every
    # file asked about is one, rather than let "All checks passed!" suggest they were judged.
    context_only = sum(1 for key in checked if not linter.production.is_production(key))
    if checked and context_only == len(checked) and not args.quiet:
        print(f"qlint: warning: {'the file' if len(checked) == 1 else f'all {len(checked)} files'} to check "
              f"{'is' if len(checked) == 1 else 'are'} non-production (tests, examples, docs ...: the "
              "`non-production` setting): read for context only, nothing reported", file=sys.stderr)
    # Nothing checked is no pass: say what was not looked at, and why.
    if not args.quiet:
        named = {str(Path(os.path.abspath(p))) for p in paths if p != STDIN}
        for skipped_path, why in linter.skipped:
            if str(skipped_path) in named or str(skipped_path) in checked and STDIN in paths:
                print(f"qlint: warning: {display(skipped_path, cwd)} was not checked: {why}", file=sys.stderr)
        if not checked and not errors:
            print("qlint: warning: no Python files or manifests found under the given paths", file=sys.stderr)
    # Files that could not be checked are reported like findings, in every format (as ruff
    # reports syntax errors); on stderr too when the output is not for a human.
    shown = remaining + [unchecked(e) for e in errors]
    summary = Summary(fixed=fixed if not args.diff else 0, unsafe_fixes_enabled=unsafe, fix_mode=args.fix)
    out = sys.stderr if (STDIN in paths and args.fix and not args.diff) else None
    stream_is_tty = (out or sys.stdout).isatty() and args.output_file is None
    color = stream_is_tty and "NO_COLOR" not in os.environ
    if args.diff:
        text = ""
        if fixed_any(outcome) and not args.quiet:
            print(f"Would fix {outcome.count} error{'s' if outcome.count != 1 else ''}.", file=sys.stderr)
    elif args.statistics:
        text = render_statistics(shown, rules=rule_map, color=color, summary=summary)
    else:
        text = render(shown, fmt, rules=rule_map, root=cwd, color=color, summary=summary)
        if args.quiet and fmt in HUMAN_FORMATS:
            text = _strip_footer(text, shown)
    emit(text, args.output_file, out)
    if args.diff or args.statistics or fmt not in HUMAN_FORMATS or args.output_file is not None:
        print_errors(errors, cwd)
    for failure in dict.fromkeys(linter.rule_failures):  # once, however many fix rounds hit it
        print(f"qlint: error: {failure}", file=sys.stderr)
    if args.verbose:
        for path, why in linter.skipped:
            print(f"qlint: skipped {display(path, cwd)}: {why}", file=sys.stderr)
        print(f"qlint: {python_count} Python files checked, {len(linter.facts)} parsed "
              f"({linter.from_cache} from the cache), {len(linter.manifests)} manifests read, "
              f"{len(linter.skipped)} skipped, {context_only} non-production (context only), "
              f"{time.perf_counter() - started:.2f} s", file=sys.stderr)

    if errors or linter.rule_failures:
        return 2
    if args.diff:
        return 1 if fixed_any(outcome) else 0
    if args.exit_zero:
        return 0
    if args.exit_non_zero_on_fix and fixed:
        return 1
    return 1 if remaining else 0


def fixed_any(outcome) -> bool:
    return bool(outcome.fixed)


def _strip_footer(text: str, remaining) -> str:
    if not remaining:
        return ""
    lines = text.rstrip("\n").split("\n")
    while lines and (lines[-1].startswith("Found ") or "fixable with" in lines[-1] or "unsafe fix" in lines[-1]
                     or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def _print_diffs(outcome, cwd: Path) -> None:
    for key in sorted(outcome.fixed):
        old = outcome.originals[key].text.splitlines(keepends=True)
        new = outcome.fixed[key].text.splitlines(keepends=True)
        name = display(Path(key), cwd)
        sys.stdout.writelines(difflib.unified_diff(old, new, fromfile=name, tofile=name))
        sys.stdout.write("\n")

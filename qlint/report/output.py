"""Writing a command's output, and files that could not be checked as diagnostics.

Shared by ``qlint check``, ``qlint check --add-noqa`` and ``qlint tasks``. A file qlint could
not check (a syntax error, bytes that are no text, a manifest that is no YAML, a file it cannot
read) is reported like a finding in every output format, as ruff reports syntax errors: code
``invalid-syntax`` (or ``io-error``), the position when the error has one, severity error.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from qlint.errors import UsageError
from qlint.lint.diagnostics import Diagnostic, Severity
from qlint.lint.source import Location

_POSITION = re.compile(r"\(line (\d+)(?:, column (\d+))?\)")
SYNTAX = ("SyntaxError", "invalid YAML", "file is nested too deeply")


def display(path: Path, root: Path) -> str:
    """A path as the user sees it: relative to ``root`` (the current folder) when it can be."""
    try:
        return os.path.relpath(path, root) if Path(path).is_absolute() else str(path)
    except ValueError:
        return str(path)


def print_errors(errors, root: Path, stream=None) -> None:
    """``qlint: error: <path>: <message>`` on stderr, for each file that could not be handled."""
    for err in errors:
        print(f"qlint: error: {display(err.path, root)}: {err.message}", file=stream or sys.stderr)


def emit(text: str, output_file: Path | None, stream=None) -> None:
    """Write a report to ``output_file`` or the stream (stdout by default), as UTF-8."""
    if not text:
        return
    if output_file is not None:
        try:
            output_file.parent.mkdir(parents=True, exist_ok=True)
            output_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output_file}: {exc.strerror or exc}") from exc
        return
    stream = stream or sys.stdout
    stream.buffer.write(text.encode("utf-8")) if hasattr(stream, "buffer") else stream.write(text)
    stream.flush()


def unchecked(error) -> Diagnostic:
    """A file that could not be checked, as a diagnostic (``error``: an engine ``FileError``)."""
    message = error.message
    match = _POSITION.search(message)
    row = int(match.group(1)) if match else 1
    column = int(match.group(2)) if match and match.group(2) else 1
    if match:
        message = (message[:match.start()].rstrip() + message[match.end():]).strip()
    code = "invalid-syntax" if message.startswith(SYNTAX) else "io-error"
    message = message.removeprefix("SyntaxError: ")
    line = ""
    try:
        with open(error.path, encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, 1):
                if number == row:
                    line = text.rstrip("\r\n")
                    break
    except OSError:
        pass
    at = Location(row, column)
    return Diagnostic(code=code, name=code, message=message, path=Path(error.path), location=at,
                      end_location=Location(row, column + 1), severity=Severity.ERROR, source_line=line)

"""What rules produce: diagnostics, and fixes as text edits (ruff's model)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from qlint.lint.source import Location


class Applicability(str, enum.Enum):
    """Ordered as in ruff: a threshold of UNSAFE applies UNSAFE and SAFE fixes."""

    DISPLAY_ONLY = "display-only"
    UNSAFE = "unsafe"
    SAFE = "safe"

    @property
    def rank(self) -> int:
        return {"display-only": 0, "unsafe": 1, "safe": 2}[self.value]


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Edit:
    """Replace ``utf8[start:end]`` of a file with ``content``.

    The file is the finding's own unless ``path`` names another: an app-level finding is
    reported on the app and its fix writes the setting where the app's configuration lives
    (a Django settings module, a config module).
    """

    start: int
    end: int
    content: str
    location: Location | None = None
    end_location: Location | None = None
    path: str | None = None


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]

    def parts(self, own: str) -> dict[str, list[Edit]]:
        """The edits by the file they change (``own``: the finding's file), in order."""
        by_file: dict[str, list[Edit]] = {}
        for e in sorted(self.edits, key=lambda e: (e.start, e.end)):
            by_file.setdefault(e.path or own, []).append(e)
        return by_file


@dataclass
class Diagnostic:
    code: str
    name: str
    message: str
    path: Path
    location: Location
    end_location: Location
    severity: Severity = Severity.WARNING
    fix: Fix | None = None
    # Lines of the statement the finding sits on: a noqa comment on any of them applies.
    noqa_rows: tuple[int, ...] = ()
    display_path: str = ""
    source_line: str = ""

    @property
    def sort_key(self):
        return (str(self.path), self.location.row, self.location.column, self.code)

    @property
    def fixable(self) -> bool:
        return self.fix is not None and self.fix.applicability is not Applicability.DISPLAY_ONLY

"""Which files run in production: the one classifier every rule's findings go through.

Test, example, documentation, benchmark and fixture code is read for context (a task a
production module imports from it still resolves) but never reported on, and nothing in it
changes what qlint concludes about production code: a test settings module's
``CELERY_TASK_ALWAYS_EAGER``, a test app's ``worker_pool = "solo"`` or a compose file for
tests counts for nothing (RULES.md, principle 1).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pathspec

from qlint.lint.paths import real_path

# Gitignore globs, matched on the path relative to the project root. RULES.md names the
# first ones; the rest are the same kinds of code as real projects spell them.
DEFAULT_NON_PRODUCTION = (
    # tests
    "tests/", "test/", "testing/", "t/", "*_tests/", "*_test/", "test_*", "*_test.py", "*_tests.py",
    "test.py", "tests.py", "testing.py", "conftest.py", "testapp/", "testproject/", "testutils/", "unittests/",
    "integrationtests/",
    # examples, documentation, benchmarks, fixtures, other linters' rule fixtures
    "examples/", "example/", "docs/", "doc/", "benchmarks/", "benchmark/", "fixtures/", ".semgrep/",
    # manifests for tests
    "docker-compose.test.yml", "docker-compose.test.yaml", "docker-compose.tests.yml", "docker-compose.tests.yaml",
    "compose.test.yml", "compose.test.yaml", "*.test.yaml", "*.test.yml",
)


def _glob_style() -> str:
    """pathspec 1.x names gitignore globs "gitignore" and deprecates "gitwildmatch"."""
    try:
        pathspec.PathSpec.from_lines("gitignore", [])
    except (KeyError, LookupError):  # pathspec < 1.0
        return "gitwildmatch"
    return "gitignore"


GLOB_STYLE = _glob_style()


class Classifier:
    """``is_production(path)``: whether findings may be made in the file at ``path``."""

    def __init__(self, patterns: list[str] | tuple[str, ...], root: Path) -> None:
        self.patterns = tuple(patterns)
        self.root = os.path.realpath(root)
        self._spec = pathspec.PathSpec.from_lines(GLOB_STYLE, self.patterns)
        self._memo: dict[str, bool] = {}
        # Without negations (``!glob``) a path matches when any glob does: one regex of them
        # all answers at once what pathspec asks glob by glob (a tenth of a warm run).
        globs = [p for p in self._spec.patterns if p.include is not None]
        self._any = None
        if globs and all(p.include and getattr(p, "regex", None) is not None for p in globs):
            self._any = re.compile("|".join(f"(?:{p.regex.pattern})" for p in globs))

    def relative(self, path: str | os.PathLike[str]) -> str:
        """The path the globs are matched on: relative to the project root when the file is
        under it, else to the current folder; a file outside both is matched by its name alone
        (the folders above a project say nothing about it: ``/tmp/test_run0/proj/tasks.py``)."""
        real = real_path(path)
        for base in (self.root, os.getcwd()):
            try:
                rel = os.path.relpath(real, base)
            except ValueError:  # another drive
                continue
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                return rel.replace(os.sep, "/")
        return os.path.basename(real)

    def is_production(self, path: str | os.PathLike[str]) -> bool:
        key = os.fspath(path)
        verdict = self._memo.get(key)
        if verdict is None:
            relative = self.relative(key)
            matched = self._any.match(relative) is not None if self._any is not None else \
                self._spec.match_file(relative)
            verdict = self._memo[key] = not matched
        return verdict


def classifier(settings) -> Classifier:
    """The classifier for a run's settings (``non-production`` and ``extend-non-production``)."""
    return Classifier(settings.effective_non_production, settings.root)

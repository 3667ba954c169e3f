from __future__ import annotations

import re
from pathlib import Path

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FileFacts, Keyword
from qlint.lint.registry import Invalid, Rule, Valid, register

# Module path parts of settings meant for a developer's machine or CI.
_DEV_PART = re.compile(r"(^|_)(dev|devel|develop|development|local|locals|ci|example|sample|template)(_|$)")
# Statements that make what they contain conditional (or not module-level at all).
_CONDITIONAL = re.compile(rb"^(if\b|elif\b|else\b|def\b|async\s+def\b|class\b|for\b|async\s+for\b|while\b|match\b|"
                          rb"case\b)")
# A value that is itself a switch: ``CELERY_TASK_ALWAYS_EAGER = DEBUG``.
_SWITCH_NAME = re.compile(r"debug|test|dev|local|eager", re.IGNORECASE)


def _dev_module(facts: FileFacts, root: Path) -> bool:
    """Settings for a developer's machine or CI (tests are non-production for every rule)."""
    return any(_DEV_PART.search(p) for p in cb.module_parts(facts, root))


def _settings_module(facts: FileFacts) -> bool:
    return any("settings" in p.lower() for p in facts.module.split("."))


def _conditional(data: bytes, start: int) -> bool:
    """Whether the statement at ``start`` sits under an ``if``/``else`` (or in a function or
    class) rather than at the top level of its module. Reads the indentation of the lines
    above it; ``try``/``with`` blocks are transparent."""
    line_start = data.rfind(b"\n", 0, start) + 1
    prefix = data[line_start:start]
    if prefix.strip():  # ``if DEBUG: CELERY_TASK_ALWAYS_EAGER = True``
        return bool(_CONDITIONAL.match(prefix.strip()))
    indent = len(prefix)
    pos = line_start
    while indent > 0 and pos > 0:
        end = pos - 1
        begin = data.rfind(b"\n", 0, end) + 1
        line = data[begin:end].rstrip(b"\r")
        pos = begin
        stripped = line.lstrip()
        if not stripped or stripped.startswith(b"#"):
            continue
        level = len(line) - len(stripped)
        if level < indent:
            if _CONDITIONAL.match(stripped):
                return True
            indent = level
    return False


@register
class EagerModeOutsideTests(Rule):
    """## What it does
    Checks for `task_always_eager = True` written unconditionally in configuration that is
    not for tests: Django settings modules (`CELERY_TASK_ALWAYS_EAGER`, the old
    `CELERY_ALWAYS_EAGER`; these count even when no Celery app in the project reads them),
    a Celery config module, `app.conf`, `app.conf.update(...)` or `Celery(...)`.

    ## Why is this bad?
    With eager mode on, `.delay()` and `.apply_async()` do not send a message: the task
    runs inline, in the caller's process, before the call returns. In production that means
    a web request waits for every task it starts, time limits are not enforced, retries
    run at once instead of after their delay, and a task that fails raises in the request
    (with `task_eager_propagates`) or is silently lost. Celery's documentation reserves the
    setting for tests.

    ## Known problems
    Modules are judged by their names: anything under a `tests` folder, named like
    `test_*`/`*_test`/`testing`/`conftest`, or meant for a developer's machine or CI
    (`dev`, `development`, `local`, `ci`, `example`, `sample`, `template` as a module or
    folder name part) is left alone, as is an assignment under any `if` (a `DEBUG` or
    `TESTING` switch, or a condition qlint cannot evaluate), a value that is itself such a
    switch (`CELERY_TASK_ALWAYS_EAGER = DEBUG`), a module that sets `DEBUG = True` (a
    development settings module), and a setting a module that star-imports
    this one sets back to something other than `True` (a production module overriding a
    base module).

    ## Example
    ```python
    # proj/settings.py
    CELERY_BROKER_URL = "redis://redis:6379/0"
    CELERY_TASK_ALWAYS_EAGER = True
    ```

    Use instead:
    ```python
    # proj/settings.py
    CELERY_BROKER_URL = "redis://redis:6379/0"

    # proj/settings_test.py
    from proj.settings import *

    CELERY_TASK_ALWAYS_EAGER = True
    ```

    ## Per framework
    - **Celery** only: `CELERY_TASK_ALWAYS_EAGER = True` / `CELERY_ALWAYS_EAGER = True` in a
      Django settings module, `task_always_eager = True` in the app's configuration
      (`app.conf.task_always_eager = True`, `Celery(task_always_eager=True)`).

    ## Fix safety
    There is no fix: the code base may rely on eager mode somewhere (a development setup
    without a broker), and moving the setting into test configuration is a decision about
    the project's layout.

    ## References
    - [Celery: task_always_eager](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-always-eager)
    - [Celery: Testing with Celery](https://docs.celeryq.dev/en/stable/userguide/testing.html)
    """

    code = "QLT406"
    name = "eager-mode-outside-tests"
    summary = "`task_always_eager = True` in configuration that is not for tests"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/settings/__init__.py": "",
            "proj/settings/test.py": """
CELERY_TASK_ALWAYS_EAGER = True
""",
            "proj/settings/local.py": """
CELERY_TASK_ALWAYS_EAGER = True
""",
        }, note="test and local development settings"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings.py": """
import sys

DEBUG = False
TESTING = "test" in sys.argv
if TESTING:
    CELERY_TASK_ALWAYS_EAGER = True
if DEBUG: CELERY_ALWAYS_EAGER = True
""",
        }, note="under a TESTING / DEBUG guard"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings.py": """
import os

DEBUG = os.environ.get("DEBUG") == "1"
CELERY_TASK_ALWAYS_EAGER = DEBUG
""",
        }, note="the value is the DEBUG switch"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings/__init__.py": "",
            "proj/settings/docker.py": """
DEBUG = True
CELERY_TASK_ALWAYS_EAGER = True
""",
        }, note="a module that turns DEBUG on is a development setup"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings/__init__.py": "",
            "proj/settings/base.py": """
CELERY_TASK_ALWAYS_EAGER = True
""",
            "proj/settings/production.py": """
from proj.settings.base import *

CELERY_TASK_ALWAYS_EAGER = False
""",
        }, note="production overrides the base module"),
        Valid("""
from celery import Celery

app = Celery("proj")

def enable_eager_for_tests():
    app.conf.task_always_eager = True
""", note="set in a function, not in the configuration"),
        Valid({
            "tests/conftest.py": """
from proj.celery import app

app.conf.task_always_eager = True
""",
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
        }, note="test configuration"),
    ]
    INVALID = [
        Invalid({
            "proj/__init__.py": "",
            "proj/settings.py": """
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ALWAYS_EAGER = True
""",
        }, expect=[("proj/settings.py", 2)], message="inline", note="Django settings, no app needed"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings/__init__.py": "",
            "proj/settings/production.py": """
try:
    from .secrets import *
except ImportError:
    pass

CELERY_ALWAYS_EAGER = True
""",
        }, expect=[("proj/settings/production.py", 6)], note="the old name"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.task_always_eager = True
""", expect=4, note="app.conf in the app's module"),
        Invalid("""
import os
from celery import Celery

app = Celery("proj", task_always_eager=os.environ.get("EAGER", True))
""", expect=4, message="EAGER", note="an environment default of True"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        candidates: list[tuple[FileFacts, Keyword, object, str]] = []
        for app in project.apps:
            for site in cb.eager_sites(app):
                if site.keyword is not None and site.file is not None:
                    candidates.append((site.file, site.keyword, site.value, site.env or ""))
        for facts in project.parsed_files():
            if not _settings_module(facts):
                continue
            for name, kw in facts.assigns.items():
                if cb.eager_name(name):
                    folded = project.fold(kw.value)
                    candidates.append((facts, kw, folded.value, folded.env or ""))
        for facts, kw, value, env in candidates:
            if value is not True or _dev_module(facts, ctx.settings.root):
                continue
            if kw.value.kind == "name" and _SWITCH_NAME.search(kw.value.dotted.rpartition(".")[2]):
                continue
            src = ctx.sources.get(facts.path)
            if src is None or _conditional(src.utf8, kw.span.start):
                continue
            if self._overridden(project, facts, kw) or self._debug_module(facts):
                continue
            origin = f"the default of environment variable {env}" if env else "set"
            ctx.report(facts, kw.span,
                       f"`{kw.name}` is True ({origin}) in `{facts.module}`: every `.delay()` runs the task "
                       "inline in the caller's process, so requests wait for it, time limits are not enforced "
                       "and retries run at once")

    @staticmethod
    def _debug_module(facts: FileFacts) -> bool:
        """A settings module that turns Django's DEBUG on with a literal: a development setup."""
        debug = facts.assigns.get("DEBUG")
        return debug is not None and debug.value.kind == "const" and debug.value.value is True

    @staticmethod
    def _overridden(project, facts: FileFacts, kw: Keyword) -> bool:
        """A module that star-imports this one sets the name back to something other than True."""
        for other in project.parsed_files():
            if other is facts or facts.module not in other.star_imports:
                continue
            again = other.assigns.get(kw.name)
            if again is not None and project.fold(again.value).value is not True:
                return True
        return False

"""Rule metadata, the registry of every rule, and code selection (ruff's semantics)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterable

from qlint.lint.diagnostics import Severity

if TYPE_CHECKING:  # pragma: no cover
    from qlint.lint.context import RuleContext

_SELECTOR = re.compile(r"^(ALL|Q|QL|QLT[0-9]{0,3})$", re.IGNORECASE)


def validate_selector(selector: str) -> None:
    if not _SELECTOR.match(selector):
        raise ValueError(f"`{selector}` is not a rule code or prefix (expected e.g. QLT101, QLT1 or QLT)")
    if not any(_matches(selector, code) for code in all_codes()):
        raise ValueError(f"`{selector}` matches no rule (see `qlint rule --all`)")


@dataclass(frozen=True)
class Case:
    """An embedded example. ``files`` maps relative paths to source; a bare string is ``tasks.py``.

    For INVALID cases ``expect`` lists ``(path, row)`` of every finding of the rule, and
    ``fixed`` the files after ``--fix --unsafe-fixes`` (only those that change).
    """

    files: dict[str, str] | str
    expect: tuple[tuple[str, int], ...] = ()
    fixed: dict[str, str] | str | None = None
    message: str | None = None  # a substring every finding's message must contain
    note: str = ""
    # Other rules to run with the one under test (QLT001 judges the codes of rules that ran).
    select: tuple[str, ...] = ()

    @property
    def file_map(self) -> dict[str, str]:
        return {"tasks.py": self.files} if isinstance(self.files, str) else dict(self.files)

    @property
    def fixed_map(self) -> dict[str, str] | None:
        if self.fixed is None:
            return None
        return {"tasks.py": self.fixed} if isinstance(self.fixed, str) else dict(self.fixed)


def Valid(files, note: str = "", select: tuple[str, ...] = ()) -> Case:  # noqa: N802 - reads like Fixit's Valid(...)
    return Case(files=files, note=note, select=tuple(select))


def Invalid(files, expect=None, fixed=None, message=None, note: str = "",
            select: tuple[str, ...] = ()) -> Case:  # noqa: N802
    if expect is None:
        expect = ()
    elif isinstance(expect, int):
        expect = (("tasks.py", expect),)
    else:
        expect = tuple((e if isinstance(e, tuple) else ("tasks.py", e)) for e in expect)
    return Case(files=files, expect=expect, fixed=fixed, message=message, note=note, select=tuple(select))


class Rule:
    """Base of every rule. Subclasses set the metadata and implement ``check``.

    The class docstring is the rule's documentation, in ruff's sections.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    fix_availability: ClassVar[str] = "None"  # "None" | "Sometimes" | "Always"
    opt_in: ClassVar[bool] = False
    frameworks: ClassVar[tuple[str, ...]] = ("celery",)
    VALID: ClassVar[list[Case]] = []
    INVALID: ClassVar[list[Case]] = []

    def check(self, ctx: "RuleContext") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def explanation(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def url(cls) -> str | None:
        """The rule's page under the project's published documentation, when it has one.

        Taken from the ``Documentation`` project URL in the package metadata; qlint has no
        published site yet, so this is None rather than a guessed address.
        """
        base = _docs_base()
        return f"{base.rstrip('/')}/rules/{cls.code}.md" if base else None


def _docs_base() -> str | None:
    from importlib import metadata

    try:
        urls = metadata.metadata("qlint-tasks").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("documentation", "docs"):
            return url.strip()
    return None


_RULES: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.code in _RULES and _RULES[cls.code] is not cls:
        raise RuntimeError(f"duplicate rule code {cls.code}")
    _RULES[cls.code] = cls
    return cls


_loaded = False


def _load() -> None:
    # A flag, not ``if _RULES``: importing one rule module first must not hide the others.
    global _loaded
    if _loaded:
        return
    import qlint.rules as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        importlib.import_module(f"qlint.rules.{info.name}")
    _loaded = True


def all_rules() -> list[type[Rule]]:
    _load()
    return [_RULES[c] for c in sorted(_RULES)]


def all_codes() -> set[str]:
    _load()
    return set(_RULES)


def get_rule(code: str) -> type[Rule] | None:
    """The rule with this code (``QLT101``, any case) or name (``task-unbounded-runtime``)."""
    _load()
    found = _RULES.get(code.upper())
    if found is None:
        found = next((rule for rule in _RULES.values() if rule.name == code.lower()), None)
    return found


def _matches(selector: str, code: str) -> bool:
    selector = selector.upper()
    return selector == "ALL" or code.startswith(selector)


def select_rules(select: Iterable[str] | None, extend_select: Iterable[str] = (),
                 ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """ruff's resolution: the most specific matching selector decides; ties go to ignore.

    With no ``select``, the base set is every rule that is not opt-in. An opt-in rule is
    enabled only by its exact code (in ``select`` or ``extend-select``): a prefix (``QLT``,
    ``QLT6``, ``ALL``) does not turn it on, as ruff treats preview rules.
    """
    chosen: list[type[Rule]] = []
    positive = [s.upper() for s in (select or [])] + [s.upper() for s in extend_select]
    negative = [s.upper() for s in ignore]
    for rule in all_rules():
        best_pos = max((len(s) for s in positive if _matches(s, rule.code) and (
            not rule.opt_in or s == rule.code)), default=-1)
        if select is None and not rule.opt_in:
            best_pos = max(best_pos, 0)
        best_neg = max((len(s) for s in negative if _matches(s, rule.code)), default=-2)
        if best_pos >= 0 and best_pos > best_neg:
            chosen.append(rule)
    return chosen


def code_matches(selectors: Iterable[str], code: str) -> bool:
    return any(_matches(s, code) for s in selectors)

"""The project's own style settings that fixes keep to: its line length and how its import
sorter tells first-party modules from third-party ones.

Read, as those tools read them, from the project root's ``pyproject.toml`` (``[tool.ruff]``,
``[tool.ruff.lint.isort]``, ``[tool.isort]``, ``[tool.black]``), ``ruff.toml`` /
``.ruff.toml``, and ``setup.cfg`` / ``tox.ini`` / ``.flake8`` / ``.isort.cfg``. Without any,
ruff's defaults: 88 columns, and a module is first-party when a folder or module of that name
sits in one of the source roots (``src``: the project root and ``src/``).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEFAULT_LINE_LENGTH = 88


@dataclass(frozen=True)
class Style:
    line_length: int = DEFAULT_LINE_LENGTH
    known_first_party: frozenset[str] = frozenset()
    known_third_party: frozenset[str] = frozenset()
    roots: tuple[Path, ...] = field(default=())

    def is_first_party(self, top: str) -> bool:
        return any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in self.roots)


def _toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _ini(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser


def _names(value) -> frozenset[str]:
    if isinstance(value, str):
        value = value.replace("\n", ",").split(",")
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v.strip() for v in value if isinstance(v, str) and v.strip())


def _length(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@lru_cache(maxsize=8)
def project_style(root: Path, src: tuple[str, ...] = (".", "src")) -> Style:
    line_length = None
    first: frozenset[str] = frozenset()
    third: frozenset[str] = frozenset()
    ruff_src = None
    ruff = {}
    for name in (".ruff.toml", "ruff.toml"):
        if (root / name).is_file():
            ruff = _toml(root / name)
            break
    pyproject = _toml(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else {}
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    if not ruff and isinstance(tool.get("ruff"), dict):
        ruff = tool["ruff"]
    if ruff:
        line_length = _length(ruff.get("line-length"))
        lint = ruff.get("lint", {}) if isinstance(ruff.get("lint"), dict) else {}
        isort = lint.get("isort") or ruff.get("isort") or {}
        if isinstance(isort, dict):
            first = _names(isort.get("known-first-party", []))
            third = _names(isort.get("known-third-party", []))
        if isinstance(ruff.get("src"), list):
            ruff_src = tuple(str(v) for v in ruff["src"] if isinstance(v, str))
    isort_table = tool.get("isort") if isinstance(tool.get("isort"), dict) else {}
    if isort_table:
        first = first or _names(isort_table.get("known_first_party", []))
        third = third or _names(isort_table.get("known_third_party", []))
        line_length = line_length or _length(isort_table.get("line_length"))
    black = tool.get("black") if isinstance(tool.get("black"), dict) else {}
    line_length = line_length or _length(black.get("line-length"))
    for name in ("setup.cfg", "tox.ini", ".flake8", ".isort.cfg"):
        path = root / name
        if not path.is_file():
            continue
        parser = _ini(path)
        if parser is None:
            continue
        if parser.has_section("isort"):
            first = first or _names(parser.get("isort", "known_first_party", fallback=""))
            third = third or _names(parser.get("isort", "known_third_party", fallback=""))
        if parser.has_section("flake8") and line_length is None:
            line_length = _length(parser.get("flake8", "max-line-length", fallback=None))
    roots = tuple(dict.fromkeys((root / entry).resolve() for entry in (ruff_src or src)))
    return Style(line_length or DEFAULT_LINE_LENGTH, first, third, roots)

"""Configuration: ``[tool.qlint]`` in pyproject.toml, ``qlint.toml`` / ``.qlint.toml``, or a
``[qlint]`` section of ``setup.cfg`` / ``tox.ini`` (as flake8 reads its own).

Every key is defined once in ``OPTIONS`` with its type, default and documentation; the
loader validates against it and the configuration reference in ``docs/`` is generated
from it, so the two cannot drift apart.
"""

from __future__ import annotations

import configparser
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILENAMES = (".qlint.toml", "qlint.toml", "pyproject.toml", "setup.cfg", "tox.ini")
INI_FILENAMES = ("setup.cfg", "tox.ini")
OUTPUT_FORMATS = ("full", "concise", "json", "json-lines", "github", "sarif")


class ConfigError(Exception):
    """A configuration problem the user can fix; reported with exit code 2."""


def _str_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return list(value)


def _code_list(key: str, value: Any) -> list[str]:
    from qlint.lint.registry import validate_selector

    items = _str_list(key, value)
    for item in items:
        validate_selector(item)
    return [i.upper() for i in items]


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _positive_number(key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("expected a positive number")
    return value


def _output_format(key: str, value: Any) -> str:
    if value not in OUTPUT_FORMATS:
        raise ValueError(f"expected one of {', '.join(OUTPUT_FORMATS)}")
    return value


def _per_file_ignores(key: str, value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table of glob = ["CODES"]')
    return {str(glob): _code_list(key, codes) for glob, codes in value.items()}


@dataclass(frozen=True)
class Option:
    key: str  # kebab-case, as written in the file
    parse: Callable[[str, Any], Any]
    default: Any
    doc: str
    type_doc: str
    example: str

    @property
    def attr(self) -> str:
        return self.key.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("select", _code_list, None, "Rule codes or prefixes to enable. Default: every rule that is not opt-in. "
           "An opt-in rule is enabled only by its exact code (a prefix such as `QLT6` or `ALL` does not turn it on).", "list[str]", 'select = ["QLT1", "QLT501"]'),
    Option("extend-select", _code_list, [], "Codes or prefixes to enable in addition to `select`.", "list[str]",
           'extend-select = ["QLT607"]'),
    Option("ignore", _code_list, [], "Codes or prefixes to disable. A more specific selector wins over a "
           "less specific one, as in ruff.", "list[str]", 'ignore = ["QLT205"]'),
    Option("per-file-ignores", _per_file_ignores, {}, "Codes to ignore in files matching a glob (relative to "
           "the configuration file's directory).", "dict[str, list[str]]",
           '[tool.qlint.per-file-ignores]\n"tests/**" = ["QLT1"]'),
    Option("exclude", _str_list, None, "Gitignore-style patterns of files and folders to skip; replaces the "
           "built-in list (VCS folders, virtual environments, node_modules, build output, caches).",
           "list[str]", 'exclude = [".venv", "build"]'),
    Option("extend-exclude", _str_list, [], "Patterns to skip in addition to `exclude`.", "list[str]",
           'extend-exclude = ["migrations/"]'),
    Option("non-production", _str_list, None, "Gitignore-style patterns, relative to the project root, of files "
           "that do not run in production: tests, examples, documentation, benchmarks, fixtures, manifests for "
           "tests. They are read for context but never reported on, and nothing in them changes a finding "
           "about production code (a test settings module's values count for nothing). Replaces the built-in "
           "list below.", "list[str]",
           'non-production = ["tests/", "examples/"]'),
    Option("extend-non-production", _str_list, [], "Patterns of non-production files in addition to "
           "`non-production`.", "list[str]", 'extend-non-production = ["sandbox/", "load_tests/"]'),
    Option("src", _str_list, [".", "src"], "Source roots, relative to the project root, as ruff's `src`: a module "
           "in no regular package (no `__init__.py` above it) is named by its path from the deepest source root "
           "holding it (`proj/celery.py` is `proj.celery`).", "list[str]", 'src = [".", "src", "backend"]'),
    Option("respect-gitignore", _bool, True, "Skip files that `.gitignore` files ignore.", "bool",
           "respect-gitignore = false"),
    Option("unsafe-fixes", _bool, False, "Apply unsafe fixes with `--fix` (as `--unsafe-fixes`).", "bool",
           "unsafe-fixes = true"),
    Option("output-format", _output_format, "full", "Default output format.", "str", 'output-format = "concise"'),
    Option("default-time-limit", _positive_int, 300, "Hard time limit, in seconds, that fixes insert where a "
           "task can run forever (QLT101). The soft limit inserted beside it is below it.", "int",
           "default-time-limit = 600"),
    Option("max-retries", _non_negative_int, 3, "Retry bound that fixes insert in place of unbounded retries "
           "(QLT201).", "int", "max-retries = 5"),
    Option("http-timeout", _positive_number, 30, "Timeout, in seconds, that fixes add to blocking network "
           "calls (QLT106).", "int | float", "http-timeout = 10"),
    Option("max-tasks-per-child", _positive_int, 1000, "Child recycling bound that fixes insert (QLT401).",
           "int", "max-tasks-per-child = 500"),
    Option("expiry-interval", _positive_number, 3600, "QLT609 reports a periodic task with no `expires` only "
           "when it runs more often than this, in seconds: its interval, or its crontab's shortest gap between "
           "two runs, is shorter. Slower schedules (hourly, daily) are not reported.", "int | float",
           "expiry-interval = 900"),
    Option("max-receive-count", _positive_int, 10, "QLT802 reports an SQS redrive policy whose "
           "`maxReceiveCount` is above this: a message that fails every time is received that many times "
           "before it reaches the dead-letter queue. Its fix writes this value.", "int",
           "max-receive-count = 5"),
)

DEFAULT_EXCLUDES = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pytest_cache", ".pytype", ".ruff_cache", ".qlint_cache", ".svn", ".tox", ".venv", ".hypothesis",
    "__pypackages__", "__pycache__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages",
    "venv", "env", ".env",
)


@dataclass(frozen=True)
class Settings:
    select: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] | None = None
    extend_exclude: list[str] = field(default_factory=list)
    non_production: list[str] | None = None
    extend_non_production: list[str] = field(default_factory=list)
    src: list[str] = field(default_factory=lambda: [".", "src"])
    respect_gitignore: bool = True
    unsafe_fixes: bool = False
    output_format: str = "full"
    default_time_limit: int = 300
    max_retries: int = 3
    http_timeout: float | int = 30
    max_tasks_per_child: int = 1000
    expiry_interval: float | int = 3600
    max_receive_count: int = 10
    # Where the settings came from; patterns are relative to this directory.
    config_path: Path | None = None
    root: Path = field(default_factory=Path.cwd)

    @property
    def effective_excludes(self) -> list[str]:
        base = list(DEFAULT_EXCLUDES) if self.exclude is None else list(self.exclude)
        return base + list(self.extend_exclude)

    @property
    def effective_non_production(self) -> list[str]:
        from qlint.lint.production import DEFAULT_NON_PRODUCTION

        base = list(DEFAULT_NON_PRODUCTION) if self.non_production is None else list(self.non_production)
        return base + list(self.extend_non_production)

    def with_overrides(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def fingerprint(self) -> str:
        """Stable text of everything that can change a result (for the cache key)."""
        return repr(sorted((k, repr(v)) for k, v in self.__dict__.items() if k not in ("root", "config_path")))


def _read_toml(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: configuration is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _read_ini(path: Path) -> dict | None:
    """The ``[qlint]`` section of a ``setup.cfg``/``tox.ini`` as a table of TOML-typed values
    (lists split on commas and new lines, as flake8 reads its own), or None without one."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: configuration is not UTF-8 text") from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: invalid INI: {str(exc).splitlines()[0]}") from exc
    if not parser.has_section("qlint"):
        return None
    by_key = {o.key: o for o in OPTIONS}
    table: dict[str, Any] = {}
    for key, raw in parser.items("qlint"):
        option = by_key.get(key) or by_key.get(key.replace("_", "-"))
        table[key] = _ini_value(option, raw) if option is not None else raw
    return table


_INI_ITEMS = re.compile(r"[,\s]+")


def _ini_value(option: Option, raw: str) -> Any:
    text = raw.strip()
    if option.parse in (_str_list, _code_list):
        return [item for item in _INI_ITEMS.split(text) if item]
    if option.parse is _per_file_ignores:  # flake8's ``glob: CODE, CODE`` lines
        table: dict[str, list[str]] = {}
        for line in text.splitlines():
            glob, colon, codes = line.strip().rpartition(":")
            if not colon or not glob.strip():
                return text  # not that shape: the option's own check says what is wrong
            table.setdefault(glob.strip(), []).extend(c for c in _INI_ITEMS.split(codes) if c)
        return table
    if option.parse is _bool:
        lowered = text.lower()
        return configparser.ConfigParser.BOOLEAN_STATES.get(lowered, text)
    if option.parse in (_positive_int, _non_negative_int, _positive_number):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
    return text


def table_of(path: Path) -> dict | None:
    """The qlint table of a configuration file, or None when the file has none."""
    if path.name in INI_FILENAMES:
        return _read_ini(path)
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("qlint") if isinstance(tool, dict) else None
        if table is None:
            return None
    else:
        tool = data.get("tool")
        table = tool["qlint"] if isinstance(tool, dict) and "qlint" in tool else data
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.qlint] must be a table")
    return table


def parse_table(table: dict, path: Path) -> Settings:
    """Settings from a qlint table; every bad key and value is reported at once."""
    by_key = {o.key: o for o in OPTIONS}
    values: dict[str, Any] = {}
    problems: list[str] = []
    unknown: list[str] = []
    for key, raw in table.items():
        option = by_key.get(key) or by_key.get(str(key).replace("_", "-"))
        if option is None:
            unknown.append(f"`{key}`")
            continue
        try:
            values[option.attr] = option.parse(key, raw)
        except ValueError as exc:
            problems.append(f"{path}: invalid value for `{key}`: {exc} (got {raw!r})")
    if unknown:
        known = ", ".join(sorted(by_key))
        noun = "key" if len(unknown) == 1 else "keys"
        problems.insert(0, f"{path}: unknown configuration {noun} {', '.join(unknown)} (known keys: {known})")
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(config_path=path, root=path.parent.resolve(), **values)


def find_config(start: Path) -> Path | None:
    """Walk up from ``start`` to the first file that configures qlint."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate_dir in (directory, *directory.parents):
        for name in CONFIG_FILENAMES:
            candidate = candidate_dir / name
            if candidate.is_file():
                if name in ("pyproject.toml", *INI_FILENAMES) and table_of(candidate) is None:
                    continue
                return candidate
    return None


def load_settings(config: Path | None, paths: list[Path]) -> Settings:
    """Settings from an explicit ``--config`` file, or the one found above the first path."""
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"{config}: configuration file not found")
        table = table_of(config)
        return parse_table(table or {}, config)
    start = paths[0] if paths else Path.cwd()
    found = find_config(start if start.exists() else Path.cwd())
    if found is None:
        return Settings(root=project_root(start if start.exists() else Path.cwd()))
    return parse_table(table_of(found) or {}, found)


def project_root(start: Path) -> Path:
    """The root of an unconfigured project holding ``start``: the repository it is in (the
    nearest folder above it with ``.git``), else the current folder when ``start`` is inside
    it, else ``start``'s own folder. A file named from anywhere is judged in its project."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    cwd = Path.cwd().resolve()
    if directory == cwd or cwd in directory.parents:
        return cwd
    return directory

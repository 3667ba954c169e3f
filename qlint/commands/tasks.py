"""``qlint tasks``: every task in the project, its effective options and where each came from.

Knows no framework: each framework module declares an ``INVENTORY`` mapping the columns to
its option names, settings and defaults (see ``qlint.frameworks.celery.INVENTORY``), and
this command reads the ``Task`` objects the project model built.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import textwrap
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from qlint.errors import UsageError
from qlint.lint.cache import FactCache
from qlint.lint.discovery import discover
from qlint.lint.engine import FRAMEWORKS, FileError, Linter
from qlint.lint.facts import FileFacts, Value
from qlint.lint.model import UNKNOWN, Project, Resolved, Task, seconds
from qlint.lint.source import SourceFile
from qlint.report.output import emit, print_errors
from qlint.settings import load_settings

FORMATS = ("table", "json", "csv")
NOT_MODELLED = "not modelled for "  # the source of a value a framework has no notion of
COLUMNS = ("queue", "time_limit", "soft_time_limit", "max_retries", "retry", "acks", "serializer")
STDIN = Path("-")


@dataclass
class Cell:
    """One column of one task: the value, and where it came from."""

    value: Any
    source: str  # "decorator", "class Base", "setting task_time_limit", "task_routes", "default", ...
    file: str | None = None  # where the value is written (relative path), when it is written
    line: int | None = None
    env: str | None = None  # the value is this environment variable's default
    note: str = ""  # why the value may not be the one that runs (configuration qlint cannot read)
    text: str | None = None  # how the table shows the value, when not the value itself
    short: str | None = None  # how the table shows the source, when shorter than ``source``

    @property
    def known(self) -> bool:
        return self.value is not UNKNOWN


@dataclass
class Row:
    task: Task
    file: str
    line: int
    cells: dict[str, Cell]


class _Sources:
    """Relative paths and line numbers of facts, through the linter's source files."""

    def __init__(self, linter: Linter, cwd: Path) -> None:
        self.linter = linter
        self.cwd = cwd

    def path(self, facts: FileFacts | None) -> str | None:
        if facts is None:
            return None
        try:
            return Path(os.path.relpath(facts.path, self.cwd)).as_posix()
        except ValueError:
            return Path(facts.path).as_posix()

    def line(self, facts: FileFacts | None, offset: int | None) -> int | None:
        if facts is None or offset is None:
            return None
        src: SourceFile | None = self.linter.sources.get(facts.path)
        return src.row_of(offset) if src is not None else None


# -- building the rows -------------------------------------------------------------------

def _frameworks() -> dict[str, dict]:
    return {fw.FRAMEWORK: getattr(fw, "INVENTORY", {}) for fw in FRAMEWORKS}


def _app_setting(task: Task, key: str) -> Resolved | None:
    for app in task.apps:
        found = app.settings.get(key)
        if found is not None:
            return found
    return None


def _from_resolved(resolved: Resolved, where: _Sources, source: str | None = None) -> Cell:
    offset = resolved.keyword.span.start if resolved.keyword is not None else None
    return Cell(resolved.value, source or resolved.source, where.path(resolved.file), where.line(resolved.file, offset),
                resolved.env)


def _hidden(task: Task) -> str:
    """Why options a task does not set where qlint can see may be set where it cannot."""
    if task.opaque:
        return task.opaque.replace("`", "").replace(" is outside", " outside")
    if "**" in task.levels.get("decorator", {}):
        return "decorator **kwargs"
    return ""


def _unknown(reason: str) -> Cell:
    short = "base class outside project" if reason.startswith("base class ") and " outside " in reason else None
    return Cell(UNKNOWN, reason, short=short)


def _config_note(task: Task) -> str:
    if "**annotations" in task.options:
        return "task_annotations not readable"
    if not task.apps:
        return "no app found"
    for app in task.apps:
        if not app.config_complete:
            return f"app configuration not fully read: {app.incomplete_reason}"
    return ""


def _overridable(resolved: Resolved | None) -> bool:
    """A value a hidden base class or ``**kwargs`` would override (settings and defaults)."""
    return resolved is None or resolved.source.startswith("setting ") or resolved.source == "default"


_MISSING = object()


def _route(table: dict, name: str, option: str):
    """The option a routing table gives ``name``: exact key, then ``*`` globs in order."""
    entry = table.get(name, _MISSING)
    if entry is _MISSING:
        for key, value in table.items():
            if isinstance(key, str) and "*" in key and re.match(re.escape(key).replace(r"\*", ".*?"), name):
                entry = value
                break
    if entry is _MISSING:
        return _MISSING
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return entry.get(option, _MISSING)
    return UNKNOWN


def _routed(task: Task, spec: dict, where: _Sources) -> Cell | None:
    key = spec.get("routes")
    resolved = _app_setting(task, key) if key else None
    if resolved is None or resolved.value is None:
        return None
    tables = resolved.value if isinstance(resolved.value, (list, tuple)) else [resolved.value]
    for table in tables:
        value = _route(table, task.name, spec["option"]) if isinstance(table, dict) else UNKNOWN
        if value is not _MISSING:
            return _from_resolved(resolved, where, key) if value is UNKNOWN else \
                _with_value(_from_resolved(resolved, where, key), value)
    return None


def _with_value(cell: Cell, value: Any) -> Cell:
    cell.value = value
    return cell


def _option_cell(task: Task, spec: dict, where: _Sources) -> Cell:
    option = spec["option"]
    resolved = task.options.get(option)
    if resolved is not None and resolved.value is not None:
        cell = _from_resolved(resolved, where)
    else:
        cell = _routed(task, spec, where)
        if cell is None and spec.get("setting"):
            setting = _app_setting(task, spec["setting"])
            if setting is not None and setting.value is not None:
                cell = _from_resolved(setting, where, f"setting {spec['setting']}")
        if cell is None:
            cell = _from_resolved(resolved, where) if resolved is not None else Cell(spec.get("default"), "default")
    hidden = _hidden(task)
    if hidden and _overridable(resolved):
        return _unknown(hidden)
    if cell.source.startswith("setting ") or cell.source == "default" or cell.source == spec.get("routes"):
        # What the app's configuration could change, when qlint could not read all of it.
        note = _config_note(task)
        if spec.get("setting") or spec.get("routes") or note.startswith("task_annotations"):
            cell.note = note
    labels = spec.get("labels")
    if labels and cell.known and cell.value in labels:
        cell.text = labels[cell.value]
        cell.value = labels[cell.value]
    return cell


# -- the retry summary -------------------------------------------------------------------

def _value_text(project: Project, value: Value | None) -> list[str]:
    """Exception names as written: ``(ConnectionError, requests.Timeout)`` -> their names."""
    if value is None:
        return []
    for _ in range(8):
        if value.kind == "seq":
            return [e.dotted or str(e.value) if e.kind in ("name", "const") else "?" for e in value.elements]
        if value.kind != "name":
            return ["?"]
        found = project.assignment(value.qualified)
        if found is None:
            return [value.dotted]
        value = found[1].value
    return ["?"]


def _names(project: Project, resolved: Resolved) -> list[str]:
    if resolved.known and isinstance(resolved.value, (list, tuple)):
        return [str(v) for v in resolved.value]
    if resolved.keyword is not None and "annotations" not in resolved.source:
        return _value_text(project, resolved.keyword.value)
    return ["?"]


def _number(value: Any) -> str:
    secs = seconds(value)
    if secs is None:
        return "?"
    if math.isinf(secs):
        return "inf"
    return str(int(secs)) if secs == int(secs) else f"{secs:g}"


def _option(task: Task, name: str, defaults: dict) -> Any:
    resolved = task.options.get(name)
    return resolved.value if resolved is not None and resolved.value is not None else defaults.get(name)


def _manual_calls(task: Task, method: str):
    """``self.<method>(...)`` on a bound task, ``<task function>.<method>(...)`` in its body."""
    if task.function is not None:
        functions = [task.function]
    elif task.cls is not None:
        prefix = f"{task.cls.qualname}."
        functions = [fn for fn in task.file.functions if fn.class_name == task.cls.name and fn.qualname == prefix + fn.name]
    else:
        functions = []
    for fn in functions:
        receivers = set()
        if task.bound:
            receivers.add("self")
            if task.function is not None and fn.params and fn.params[0].kind == "positional":
                receivers.add(fn.params[0].name)
        if task.function is not None:
            receivers.add(task.function.name)
        for call in fn.calls:
            if call.method == method and call.is_call and call.receiver in receivers:
                yield call


def _retry_cell(project: Project, task: Task, spec: dict, where: _Sources) -> Cell:
    defaults = spec.get("defaults", {})
    parts: list[str] = []
    cell: Cell | None = None
    delay = f"{_number(_option(task, spec['delay'], defaults))}s fixed"

    auto = task.options.get(spec["auto"])
    if auto is not None and (not auto.known or auto.value or (auto.keyword is not None and _names(project, auto))):
        names = _names(project, auto)
        if auto.known and not auto.value:
            names = []
        if names:
            text = f"autoretry ({', '.join(names)})"
            backoff = task.options.get(spec["backoff"])
            kwargs = task.options.get(spec["kwargs"])
            countdown = kwargs.value.get("countdown") if kwargs is not None and isinstance(kwargs.value, dict) else None
            if backoff is not None and not backoff.known:
                text += " backoff ?"
            elif backoff is not None and backoff.value:
                text += f" backoff ≤{_number(_option(task, spec['backoff_max'], defaults))}s"
            elif countdown is not None:
                text += f" countdown {_number(countdown)}s"
            else:
                text += f", {delay}"
            parts.append(text)
            cell = _from_resolved(auto, where)
    calls = list(_manual_calls(task, spec["method"]))
    if calls:
        first = calls[0]
        keywords = spec.get("delay_keywords", ())
        timed = any(k in call.kwargs for call in calls for k in keywords)
        parts.append(f"manual {first.receiver}.{spec['method']}, " + ("countdown" if timed else delay))
        if cell is None:
            cell = Cell(None, "task body", where.path(task.file), where.line(task.file, first.span.start))
    hidden = _hidden(task)
    if not parts:
        if hidden:
            return _unknown(hidden)
        cell = Cell("none", "default" if auto is None else auto.source)
        if auto is not None:
            cell = _from_resolved(auto, where)
        parts = ["none"]
    cell.value = "; ".join(parts)
    if not hidden and cell.source in ("default", "task body"):
        cell.note = "task_annotations not readable" if "**annotations" in task.options else ""
    return cell


# -- the command ---------------------------------------------------------------------------

def rows_for(project: Project, linter: Linter, cwd: Path, only: set[str] | None = None) -> list[Row]:
    where = _Sources(linter, cwd)
    inventories = _frameworks()
    rows = []
    for task in project.tasks:
        if only is not None and task.file.path not in only:
            continue
        spec = inventories.get(task.framework, {})
        cells = {}
        for column in COLUMNS:
            column_spec = spec.get(column)
            if column_spec is None:
                cells[column] = Cell(UNKNOWN, f"{NOT_MODELLED}{task.framework}")
            elif column == "retry":
                cells[column] = _retry_cell(project, task, column_spec, where)
            elif "norm" in column_spec:  # the framework's normalised answer (seconds, counts)
                resolved = task.norm.get(column_spec["norm"])
                hidden = _hidden(task)
                if resolved is not None and hidden and _overridable(resolved):
                    cells[column] = _unknown(hidden)  # what ``**kwargs`` may set is not the default
                else:
                    cells[column] = _from_resolved(resolved, where) if resolved is not None else \
                        Cell(UNKNOWN, f"{NOT_MODELLED}{task.framework}")
            elif "option" not in column_spec:
                cells[column] = Cell(column_spec.get("default"), "default")
            else:
                cells[column] = _option_cell(task, column_spec, where)
                worker = task.norm.get(column_spec.get("worker_norm", ""))
                if worker is not None and worker.source.startswith("worker flag"):
                    cells[column] = Cell(worker.value, worker.source)  # nothing in the code: the command decides
        rows.append(Row(task, where.path(task.file) or task.file.path,
                        where.line(task.file, task.anchor.start) or 0, cells))
    rows.sort(key=lambda r: (r.file, r.line, r.task.name))
    return rows


def _load(args: argparse.Namespace):
    paths = args.paths or [Path(".")]
    if STDIN in paths:
        raise UsageError("`qlint tasks` reads files, not stdin (`-`)")
    settings = load_settings(args.config, list(paths))
    cache = None if args.no_cache or os.environ.get("QLINT_NO_CACHE") else FactCache(settings.root)
    linter = Linter(settings, [], cache=cache)
    found = discover([Path(os.path.abspath(p)) for p in paths], settings)
    errors = [FileError(p, msg) for p, msg in found.errors]
    checked = {str(p) for p in found.python}
    # The whole project is read as it is for `qlint .` (the prefilter skips files with no
    # task machinery), so that a task in a named file or folder finds its app, the app's
    # settings and its base classes; only the named paths' tasks are listed.
    project_files = discover([settings.root], settings)
    rest = [p for p in project_files.python if str(p) not in checked]
    linter.load([*found.python, *rest])
    # Worker commands in the project's manifests decide some values (``celery worker --time-limit``).
    linter.load_manifests([*project_files.yaml, *project_files.procfiles, *project_files.scripts,
                           *project_files.terraform])
    errors.extend(e for e in linter.errors if str(e.path) in checked)
    return linter, checked, errors


def run_tasks(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    linter, checked, errors = _load(args)
    project = linter.model()
    rows = rows_for(project, linter, cwd, only=checked)
    text = {"table": render_table, "json": render_json, "csv": render_csv}[args.output_format](rows)

    emit(text, args.output_file)
    print_errors(errors, cwd)
    return 2 if errors else 0


# -- output ------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A JSON-serialisable value."""
    if value is UNKNOWN:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def value_text(cell: Cell) -> str:
    if cell.text is not None:
        return cell.text
    value = cell.value
    if value is UNKNOWN:
        return "unknown"
    if isinstance(value, timedelta) or (isinstance(value, float) and not isinstance(value, bool)):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def source_text(cell: Cell, task_file: str) -> str:
    """A value's full source, for CSV (the table's is ``short_source``)."""
    text = cell.source
    if cell.file and (cell.file != task_file or cell.source.startswith("setting ") or cell.source == "task_routes"):
        text += f" in {cell.file}"
    if cell.env:
        text += f", env {cell.env} default"
    if cell.note:
        text += f"; {cell.note}"
    return text


def declared_text(task: Task) -> str:
    """How the task is declared, when that goes through the project's wrappers:
    ``@actor -> dramatiq.actor`` ("" for the framework's own decorator, written as it is)."""
    chain = task.declared_by
    if len(chain) < 2:
        return ""
    return " -> ".join([f"@{chain[0].rpartition('.')[2]}", *chain[1:]])


WIDTH = 100  # the report's lines fit a terminal of this width
LABELS = {"queue": "queue", "time_limit": "time limit", "soft_time_limit": "soft limit", "max_retries": "max retries",
          "retry": "retry", "acks": "acks", "serializer": "serializer"}


def _modelled(cell: Cell) -> bool:
    return not cell.source.startswith(NOT_MODELLED)


def short_source(cell: Cell) -> str:
    """Where a value comes from, in a few words: the setting's name without its file, a
    wrapper by its decorator's name (``@io_task``), a class by its name."""
    text = cell.short or cell.source
    if text.startswith("setting "):
        text = text[len("setting "):]
    elif text.startswith("wrapper "):
        name, _, rest = text[len("wrapper "):].partition(" ")
        text = f"@{name.rpartition('.')[2]}" + (f", {rest.strip('()')}" if rest else "")
    elif text.startswith("dramatiq.") or text.startswith("huey."):
        text = text.rpartition(".")[2]
    if cell.env:
        text += f", env {cell.env}"
    if cell.note:
        text += f"; {cell.note}"
    return text


def _seconds_text(value: Any) -> str:
    return f"{_number(value)} s" if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool) \
        else str(value)


def item_text(column: str, cell: Cell) -> str:
    """One value of the report: ``time limit 600 s (task_time_limit)``, ``no soft limit``."""
    label = LABELS[column]
    value = cell.value
    if value is UNKNOWN:
        return f"{label} unknown ({short_source(cell)})"
    if column in ("time_limit", "soft_time_limit"):
        unbounded = value is None or isinstance(value, float) and math.isinf(value) or value in (0, -1)
        text = f"no {label}" if unbounded else f"{label} {_seconds_text(value) if cell.text is None else cell.text}"
    elif column == "max_retries" and value is None:
        text = "no retry limit"
    elif column == "retry" and value == "none":
        text = "no retry"
    else:
        text = f"{label} {value_text(cell)}"
    return text if cell.source == "default" and not cell.note else f"{text} ({short_source(cell)})"


def _wrap(items: list[str], indent: str) -> list[str]:
    """Items joined by `` · ``, a line broken between items (within one only when it is too long)."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line} · {item}" if line else item
        if len(indent) + len(candidate) + len(" ·") <= WIDTH or not line:
            line = candidate
            continue
        lines.append(line + " ·")
        line = item
    if line:
        lines.append(line)
    out = []
    for line in lines:
        out.extend(textwrap.wrap(line, WIDTH, initial_indent=indent, subsequent_indent=indent,
                                 break_on_hyphens=False) or [indent])
    return out


def _display_name(task: Task) -> str:
    """The task's registered name, without the module path its location already shows."""
    function = task.function.name if task.function is not None else task.cls.name if task.cls is not None else None
    if function and task.name == f"{task.file.module}.{function}":
        return function
    return task.name


def render_table(rows: list[Row]) -> str:
    """A report, not a grid: a task's location and name on one line, then its values, each
    with a short source unless it is the framework's default, within 100 columns. Values a
    framework has no notion of are left out."""
    if not rows:
        return "No tasks found.\n"
    frameworks = sorted({row.task.framework for row in rows})
    out: list[str] = []
    for row in rows:
        head = f"{row.file}:{row.line}  {_display_name(row.task)}"
        if len(frameworks) > 1:
            head += f"  [{row.task.framework}]"
        out.extend(textwrap.wrap(head, WIDTH, subsequent_indent="    ", break_on_hyphens=False))
        cells = [(column, row.cells[column]) for column in COLUMNS if _modelled(row.cells[column])]
        items = []
        declared = declared_text(row.task)
        if declared:
            items.append(f"via {declared}")
        reasons = {short_source(cell) for _, cell in cells if cell.value is UNKNOWN}
        if cells and all(cell.value is UNKNOWN for _, cell in cells) and len(reasons) == 1:
            items.append(f"options unknown ({reasons.pop()})")
        else:
            items.extend(item_text(column, cell) for column, cell in cells)
        out.extend(_wrap(items, "    "))
    counts = ", ".join(f"{fw} {sum(1 for r in rows if r.task.framework == fw)}" for fw in frameworks)
    total = f"{len(rows)} task{'s' if len(rows) != 1 else ''}" + (f" ({counts})" if len(frameworks) > 1 else "")
    out += ["", total, "A value without a source is the framework's default; `--output-format json` has every "
            "source,", "with its file and line."]
    return "\n".join(out) + "\n"


def _cell_json(cell: Cell) -> dict:
    data = {"value": _plain(cell.value), "known": cell.known, "source": cell.source, "file": cell.file,
            "line": cell.line}
    if cell.env:
        data["env"] = cell.env
    if cell.note:
        data["note"] = cell.note
    return data


def render_json(rows: list[Row]) -> str:
    data = [{"file": row.file, "line": row.line, "framework": row.task.framework, "name": row.task.name,
             "declared_by": row.task.declared_by, **{c: _cell_json(row.cells[c]) for c in COLUMNS}} for row in rows]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "line", "framework", "name", "declared_by",
                     *(h for c in COLUMNS for h in (c, f"{c}_source"))])
    for row in rows:
        values = []
        for c in COLUMNS:
            cell = row.cells[c]
            values += ["" if cell.value is UNKNOWN else value_text(cell), source_text(cell, row.file)]
        writer.writerow([row.file, row.line, row.task.framework, row.task.name, " -> ".join(row.task.declared_by),
                         *values])
    return buffer.getvalue()


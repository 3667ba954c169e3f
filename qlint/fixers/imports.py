"""Adding an import where isort, and ruff's ``I`` rules, would put it.

A fix that adds ``from celery.exceptions import SoftTimeLimitExceeded`` after the project's own
imports makes the project's import check fail on a file it kept clean. The new import goes into
its section of the module's first import block (future, standard library, third party, first
party, local folder: ruff's and isort's defaults), in sorted position within it (``import x``
statements before ``from x import y`` ones, modules compared case-insensitively), or joins an
existing ``from`` import of the same module in name order (constants, classes, then the rest).
A section the block lacks is opened with a blank line around it; a module without imports gets
a block after its docstring, followed by the blank lines ruff wants (two before a ``def`` or
``class``, one otherwise).

Where placing the import would need a rewrite qlint does not make (a line pushed past the
line length, a ``;`` joining statements, a wrapped import written another way) there is no
edit, and the fix is not offered.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass

from qlint.fixers.style import Style
from qlint.lint import chunks
from qlint.lint.diagnostics import Edit
from qlint.lint.scan import line_end
from qlint.lint.source import SourceFile

SECTIONS = ("future", "standard-library", "third-party", "first-party", "local-folder")
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset(sys.builtin_module_names)


@dataclass(frozen=True)
class _Stmt:
    node: ast.Import | ast.ImportFrom
    section: int
    plain: bool  # ``import x`` (True) or ``from x import y``
    key: tuple[str, str]


def section_of(module: str, level: int, style: Style) -> int:
    if level:
        return SECTIONS.index("local-folder")
    if module == "__future__":
        return SECTIONS.index("future")
    top = module.split(".")[0]
    if top in style.known_first_party:
        return SECTIONS.index("first-party")
    if top in style.known_third_party:
        return SECTIONS.index("third-party")
    if top in _STDLIB:
        return SECTIONS.index("standard-library")
    if style.is_first_party(top):
        return SECTIONS.index("first-party")
    return SECTIONS.index("third-party")


def _module_key(module: str) -> tuple[str, str]:
    return module.lower(), module


def _name_key(name: str) -> tuple[int, str, str]:
    """ruff's ``order-by-type``: CONSTANTS, then Classes, then everything else."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name.lower(), name


def _top_statements(src: SourceFile) -> list[ast.stmt] | None:
    pieces = chunks.pieces_of(src.utf8, str(src.path))
    try:
        tree = pieces.parse(0) if pieces is not None else ast.parse(src.utf8)
    except (SyntaxError, ValueError):
        return None
    return tree.body


def add_import(src: SourceFile, module: str, name: str | None, style: Style) -> list[Edit] | None:
    """Edits that import ``module`` (``import module``) or ``name`` from it; None when qlint
    cannot place it as the project's import sorting would."""
    body = _top_statements(src)
    if body is None:
        return None
    nl = src.newline
    statement = f"from {module} import {name}" if name else f"import {module}"
    start = 1 if body and _docstring(body[0]) else 0
    block: list[_Stmt] = []
    for node in body[start:]:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            break
        if isinstance(node, ast.Import):
            block.append(_Stmt(node, section_of(node.names[0].name, 0, style), True, _module_key(node.names[0].name)))
        else:
            block.append(_Stmt(node, section_of(node.module or "", node.level, style), False,
                               _module_key("." * node.level + (node.module or ""))))
    if any(_shares_line(src, s.node) for s in block):
        return None
    ours = section_of(module, 0, style)
    if not block:
        return _new_block(src, body, start, statement, style)
    same = [s for s in block if s.section == ours]
    if name:
        existing = next((s for s in same if not s.plain and s.node.level == 0 and s.node.module == module
                         and not any(a.name == "*" for a in s.node.names)), None)
        if existing is not None:
            return _join(src, existing.node, name, style)
    key = _module_key(module)
    if not _fits(style, statement):
        return None
    group = 1 if name else 0  # ``import x`` statements sort before ``from x import y`` ones
    if same:
        after = [s for s in same if (group, key) < (0 if s.plain else 1, s.key)]
        before = [s for s in same if s not in after]
        if before:  # right below the import it follows, above any comment of the next one
            at = _line_after(src, before[-1].node)
            return [Edit(at, at, statement + nl)]
        at = _statement_start(src, after[0].node)
        commented = at < src.line_starts[after[0].node.lineno - 1]
        # ruff wants a blank line above a comment inside an import block.
        return [Edit(at, at, statement + nl + (nl if commented else ""))]
    later = [s for s in block if s.section > ours]
    if later:  # a section of its own, before the next one
        at = _statement_start(src, later[0].node)
        return [Edit(at, at, statement + nl + nl)]
    at = _line_after(src, block[-1].node)
    return [Edit(at, at, nl + statement + nl)]


def _docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _fits(style: Style, line: str) -> bool:
    return len(line) <= style.line_length


def _shares_line(src: SourceFile, node: ast.stmt) -> bool:
    """Another statement on the import's lines (``import os; import sys``), or a backslash."""
    data = src.utf8
    starts = src.line_starts
    begin = starts[node.lineno - 1]
    end = line_end(data, starts[node.end_lineno - 1])
    text = data[begin:end]
    return begin != starts[node.lineno - 1] + node.col_offset or b";" in text or b"\\\n" in text


def _line_after(src: SourceFile, node: ast.stmt) -> int:
    """The offset of the line after the statement's last line."""
    data = src.utf8
    end = line_end(data, src.line_starts[node.end_lineno - 1])
    return min(end + 1, len(data))


def _statement_start(src: SourceFile, node: ast.stmt) -> int:
    """The start of the statement's first line, above the comment lines directly over it
    (isort keeps such comments with the import below them)."""
    starts = src.line_starts
    row = node.lineno - 1
    while row > 0:
        line = src.utf8[starts[row - 1]:starts[row]].strip()
        if not line.startswith(b"#"):
            break
        row -= 1
    return starts[row]


def _join(src: SourceFile, node: ast.ImportFrom, name: str, style: Style) -> list[Edit] | None:
    """``name`` added to ``from module import a, b`` in ``order-by-type`` position."""
    if any(a.name == name and a.asname is None for a in node.names):
        return []
    data = src.utf8
    starts = src.line_starts
    aliases = node.names
    if any(getattr(a, "lineno", None) is None for a in aliases):
        return None
    key = _name_key(name)
    following = next((a for a in aliases if _name_key(a.name) > key), None)
    one_line = node.lineno == node.end_lineno
    if following is not None:
        at = starts[following.lineno - 1] + following.col_offset
        if one_line or any(a.lineno == following.lineno for a in aliases if a is not following):
            text = f"{name}, "
        else:  # one name per line: a line of its own, as indented as the next
            indent = data[starts[following.lineno - 1]:at].decode("utf-8")
            if indent.strip():
                return None
            text = f"{name},{src.newline}{indent}"
        edit = Edit(at, at, text)
    else:
        last = aliases[-1]
        at = starts[last.end_lineno - 1] + last.end_col_offset
        if not one_line:
            rest = data[at:line_end(data, at)].strip()
            if not rest.startswith(b","):
                return None  # ``b\n)``: where the new name goes depends on the project's formatter
            indent = data[starts[last.lineno - 1]:starts[last.lineno - 1] + last.col_offset].decode("utf-8")
            if indent.strip():
                return None
            comma = data.index(b",", at) + 1
            end = line_end(data, comma)
            if data[comma:end].strip():
                return None  # a comment after the comma
            edit = Edit(end, end, f"{src.newline}{indent}{name},")
        else:
            edit = Edit(at, at, f", {name}")
    if one_line:
        line_start = starts[node.lineno - 1]
        line = data[line_start:line_end(data, line_start)].decode("utf-8").rstrip("\r")
        if len(line) + len(edit.content) > style.line_length:
            return None
    return [edit]


def _new_block(src: SourceFile, body: list[ast.stmt], start: int, statement: str, style: Style) -> list[Edit] | None:
    """A first import block: after the docstring (with a blank line between), or above the
    first statement, with the blank lines ruff wants before what follows."""
    if not _fits(style, statement):
        return None
    nl = src.newline
    following = body[start] if start < len(body) else None
    want = 2 if isinstance(following, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else 1
    data = src.utf8
    if start:  # after the docstring
        at = _line_after(src, body[0])
        if at == len(data) and not data.endswith(b"\n"):
            return [Edit(at, at, nl + nl + statement + nl)]
        blank = _blank_lines_from(src, at)
        if following is None:
            return [Edit(at, at, nl + statement + nl)]
        return [Edit(at, at, nl + statement + nl + nl * max(want - blank, 0))]
    if following is None:
        return None
    first = following.decorator_list[0] if isinstance(
        following, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and following.decorator_list else following
    at = _statement_start(src, first)
    if at == 0 and at < src.line_starts[first.lineno - 1]:
        at = src.line_starts[first.lineno - 1]  # below a header comment (a licence, a shebang)
    return [Edit(at, at, statement + nl + nl * want)]


def _blank_lines_from(src: SourceFile, offset: int) -> int:
    data = src.utf8
    count = 0
    while offset < len(data):
        end = line_end(data, offset)
        if data[offset:end].strip():
            break
        count += 1
        offset = end + 1
    return count

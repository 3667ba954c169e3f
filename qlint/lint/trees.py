"""CPython trees of the files rules read beyond their facts, parsed once per run.

Rules that follow a task's control flow (QLT105, QLT305, QLT505, QLT603) ask for one
function's tree. Each file is parsed at most once per run, and its functions are indexed in the
same walk, so a module with thousands of tasks costs one walk, not one per task. A module large
enough to be read in pieces (``chunks``) is parsed a piece at a time, only the pieces holding
the functions asked for, and only the last few are kept.
"""
from __future__ import annotations

import ast
from collections import OrderedDict

from qlint.lint import chunks
from qlint.lint.extract import parse
from qlint.lint.facts import FunctionFact
from qlint.lint.source import SourceFile

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
Index = dict[tuple[int, str], FunctionNode]

# Pieces of large modules kept parsed at once: a rule walks a module's tasks in order.
KEPT_PIECES = 4


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")
_STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)


def _index(tree: ast.AST) -> Index:
    """Every ``def`` by (line, name). Statements only: a ``def`` is never inside an expression,
    and skipping expressions makes this a tenth of ``ast.walk``'s work."""
    found: Index = {}
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[(node.lineno, node.name)] = node
        for name in _BLOCKS:
            children = getattr(node, name, None)
            if children:
                stack.extend(c for c in children if isinstance(c, _STATEMENTS))
    return found


class Trees:
    """Trees of the files rules read (None: syntax only libcst reads, or too deep to parse)."""

    def __init__(self) -> None:
        self._whole: dict[str, Index | None] = {}
        self._pieces: dict[str, chunks.Pieces | None] = {}  # None: read whole
        self._parsed: OrderedDict[tuple[str, int], Index] = OrderedDict()

    def forget(self, path: str) -> None:
        """Drop what was read of ``path`` (its source was replaced by a fix)."""
        self._whole.pop(path, None)
        self._pieces.pop(path, None)
        for key in [k for k in self._parsed if k[0] == path]:
            del self._parsed[key]

    def function(self, src: SourceFile, fn: FunctionFact) -> FunctionNode | None:
        key = str(src.path)
        index = self._piece_index(src, key, fn.def_start) if key not in self._whole else None
        if index is None:
            index = self._whole_index(src, key)
        if index is None:
            return None
        return index.get((src.row_of(fn.def_start), fn.name))

    def _whole_index(self, src: SourceFile, key: str) -> Index | None:
        if key not in self._whole:
            try:
                self._whole[key] = _index(parse(src))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                self._whole[key] = None
        return self._whole[key]

    def _piece_index(self, src: SourceFile, key: str, offset: int) -> Index | None:
        """The functions of the piece holding ``offset``, for a module read in pieces."""
        if key not in self._pieces:
            self._pieces[key] = chunks.pieces_of(src.utf8, key)
        pieces = self._pieces[key]
        if pieces is None:
            return None
        number = pieces.index_of(offset)
        cached = self._parsed.get((key, number))
        if cached is not None:
            self._parsed.move_to_end((key, number))
            return cached
        try:
            index = _index(pieces.parse(number))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self._pieces[key] = None
            return None  # a piece that does not parse alone: the module is read whole
        self._parsed[(key, number)] = index
        while len(self._parsed) > KEPT_PIECES:
            self._parsed.popitem(last=False)
        return index


def own_nodes(node: ast.AST):
    """Nodes that run as part of ``node``: not the bodies of nested functions, lambdas or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from own_nodes(child)

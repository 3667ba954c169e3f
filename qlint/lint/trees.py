"""CPython trees of the files rules read beyond their facts, parsed once per rule run.

Rules that follow a task's control flow (QLT105, QLT305, QLT505, QLT603) ask for one
function's tree. Each file is parsed at most once, and its functions are indexed in the same
walk, so a module with thousands of tasks costs one walk, not one per task.
"""
from __future__ import annotations

import ast

from qlint.lint.extract import parse
from qlint.lint.facts import FunctionFact
from qlint.lint.source import SourceFile

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class Trees:
    """Trees of the files a rule reads (None: syntax only libcst reads, or too deep to parse)."""

    def __init__(self) -> None:
        self._functions: dict[str, dict[tuple[int, str], FunctionNode] | None] = {}

    def _index(self, src: SourceFile) -> dict[tuple[int, str], FunctionNode] | None:
        key = str(src.path)
        if key not in self._functions:
            try:
                tree = parse(src)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                self._functions[key] = None
            else:
                self._functions[key] = {(node.lineno, node.name): node for node in ast.walk(tree)
                                        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        return self._functions[key]

    def function(self, src: SourceFile, fn: FunctionFact) -> FunctionNode | None:
        index = self._index(src)
        if index is None:
            return None
        return index.get((src.row_of(fn.def_start), fn.name))


def own_nodes(node: ast.AST):
    """Nodes that run as part of ``node``: not the bodies of nested functions, lambdas or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from own_nodes(child)

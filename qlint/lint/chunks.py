"""A large module parsed in pieces cut between top-level statements.

A generated module of 5 MB is a syntax tree of about a gigabyte when CPython builds it whole.
Cut at the line starts of top-level ``def``/``class`` statements (with their decorators), each
piece parses alone into a tree a few megabytes large, which can be read and dropped before the
next. A cut inside a string, brackets or a continued line leaves a piece that does not parse
(an unterminated string or bracket at its end), so a module is read in pieces only when every
piece parses; otherwise it is parsed whole, as any other.

Each piece is compiled behind as many empty lines as precede it, so its nodes carry the line
numbers (and, lines being whole, the byte columns) they have in the module.
"""

from __future__ import annotations

import ast
import re
import warnings
from bisect import bisect_right
from collections.abc import Iterator

# Modules above this size are read in pieces of about PIECE bytes.
THRESHOLD = 1 << 20
PIECE = 1 << 18

_TOP_LEVEL = re.compile(rb"^(?:@|def[ \t]|async[ \t]+def[ \t]|class[ \t])", re.MULTILINE)


def cut_points(data: bytes, piece: int | None = None) -> list[int]:
    """Byte offsets where pieces start: 0, then the start of the first top-level ``def``,
    ``class`` or decorator line at least ``piece`` bytes after the previous cut, backed up over
    the decorators above it."""
    piece = piece or PIECE
    points = [0]
    target = piece
    while target < len(data):
        match = _TOP_LEVEL.search(data, target)
        if match is None:
            break
        start = match.start()
        while start > 0:  # keep decorators with what they decorate
            above = data.rfind(b"\n", 0, start - 1) + 1
            if not data.startswith(b"@", above):
                break
            start = above
        if start > points[-1]:
            points.append(start)
        target = max(start, match.end()) + piece
    return points


def _compile(text: str, path: str) -> ast.Module:
    with warnings.catch_warnings():  # e.g. invalid escape sequences: not ours to report
        warnings.simplefilter("ignore")
        return compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)


class Pieces:
    """The pieces of one module: each parsed on demand, at its own line numbers."""

    def __init__(self, data: bytes, path: str, points: list[int] | None = None) -> None:
        self.data = data
        self.path = path
        self.points = points if points is not None else cut_points(data)
        self._lines = [data.count(b"\n", 0, p) for p in self.points]

    def __len__(self) -> int:
        return len(self.points)

    def text(self, index: int) -> str:
        """Piece ``index``'s own text."""
        start = self.points[index]
        end = self.points[index + 1] if index + 1 < len(self.points) else len(self.data)
        return self.data[start:end].decode("utf-8")

    def parse(self, index: int) -> ast.Module:
        """Piece ``index``'s tree (raises ``SyntaxError`` when the piece does not parse alone)."""
        return _compile("\n" * self._lines[index] + self.text(index), self.path)

    def index_of(self, offset: int) -> int:
        """The piece holding byte ``offset``."""
        return bisect_right(self.points, offset) - 1

    def trees(self) -> Iterator[ast.Module]:
        for index in range(len(self.points)):
            yield self.parse(index)


def pieces_of(data: bytes, path: str) -> Pieces | None:
    """The module in pieces when it is large enough to be worth cutting, and cuts into several."""
    if len(data) <= THRESHOLD:
        return None
    pieces = Pieces(data, path)
    return pieces if len(pieces) > 1 else None

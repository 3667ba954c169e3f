"""A file's bytes, its text, and the mapping between offsets and positions.

CPython's ``ast`` counts columns in the UTF-8 encoding of the module's text (as libcst's
``ByteSpanPositionProvider`` counts offsets) whatever the file's own encoding is, so every
offset in qlint is an offset into ``SourceFile.utf8``. Edits are applied there and the result is encoded
back into the file's own encoding, with its BOM, so bytes a fix does not touch stay
exactly as they were.
"""

from __future__ import annotations

import codecs
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from qlint.lint.scan import line_starts as _line_starts_of

_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class UndecodableSource(Exception):
    """The bytes cannot be decoded as Python source."""


@dataclass(frozen=True)
class Location:
    row: int  # 1-based
    column: int  # 1-based, in characters


def detect_encoding(raw: bytes) -> tuple[str, bool]:
    """Return (encoding, has_bom) as PEP 263 defines them."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    for line in raw.splitlines()[:2]:
        match = _COOKIE.match(line)
        if match:
            name = match.group(1).decode("ascii", "replace")
            try:
                return codecs.lookup(name).name, False
            except LookupError as exc:
                raise UndecodableSource(f"unknown encoding {name!r} in coding cookie") from exc
        if line.strip() and not line.lstrip().startswith(b"#"):
            break
    return "utf-8", False


@dataclass
class SourceFile:
    path: Path
    raw: bytes
    encoding: str = "utf-8"
    bom: bool = False
    text: str = ""
    utf8: bytes = b""
    _line_starts: list[int] = field(default_factory=list, repr=False)

    @classmethod
    def from_bytes(cls, path: Path, raw: bytes) -> "SourceFile":
        if b"\x00" in raw:
            raise UndecodableSource("file contains NUL bytes (binary file?)")
        encoding, bom = detect_encoding(raw)
        body = raw[len(codecs.BOM_UTF8):] if bom else raw
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise UndecodableSource(f"cannot decode as {encoding}: {exc}") from exc
        return cls.from_text(path, text, encoding=encoding, bom=bom, raw=raw)

    @classmethod
    def from_text(cls, path: Path, text: str, *, encoding: str = "utf-8", bom: bool = False,
                  raw: bytes | None = None) -> "SourceFile":
        utf8 = text.encode("utf-8", "surrogatepass")
        if raw is None:
            raw = (codecs.BOM_UTF8 if bom else b"") + text.encode(encoding)
        return cls(path=path, raw=raw, encoding=encoding, bom=bom, text=text, utf8=utf8)

    @property
    def line_starts(self) -> list[int]:
        if not self._line_starts:
            self._line_starts = _line_starts_of(self.utf8)
        return self._line_starts

    def row_of(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset)

    def location(self, offset: int) -> Location:
        row = self.row_of(offset)
        start = self.line_starts[row - 1]
        column = len(self.utf8[start:offset].decode("utf-8", "replace")) + 1
        return Location(row, column)

    def line_text(self, row: int) -> str:
        starts = self.line_starts
        start = starts[row - 1]
        end = starts[row] if row < len(starts) else len(self.utf8)
        return self.utf8[start:end].decode("utf-8", "replace").rstrip("\r\n")

    def line_span(self, row: int) -> tuple[int, int]:
        """Byte span of a line without its line break."""
        starts = self.line_starts
        start = starts[row - 1]
        end = starts[row] if row < len(starts) else len(self.utf8)
        while end > start and self.utf8[end - 1] in (0x0A, 0x0D):
            end -= 1
        return start, end

    @property
    def newline(self) -> str:
        match = re.search(r"\r\n|\r|\n", self.text)
        return match.group(0) if match else "\n"

    def encode(self, utf8: bytes) -> bytes:
        """Turn edited UTF-8 text back into the file's own bytes."""
        text = utf8.decode("utf-8", "surrogatepass")
        return (codecs.BOM_UTF8 if self.bom else b"") + text.encode(self.encoding)

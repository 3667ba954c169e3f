"""Edits to YAML text that keep every comment, quote style, flow or block style and indent.

Edits are computed from the node positions PyYAML's composer gives; nothing is re-dumped.
Each primitive returns an empty list where it cannot be sure of the result (a block
scalar, a string command whose worker is not its last command), and the fix loop reloads
every fixed file to prove it still parses.
"""

from __future__ import annotations

from qlint.lint.diagnostics import Edit
from qlint.lint.scan import line_end
from qlint.lint.source import SourceFile
from qlint.manifests.workloads import Token
from qlint.manifests.yamldoc import Node


def _line_bounds(data: bytes, offset: int) -> tuple[int, int]:
    return data.rfind(b"\n", 0, offset) + 1, line_end(data, offset)


def _quoted(src: SourceFile, token: Token) -> str:
    first = src.utf8[token.span.start:token.span.start + 1]
    return first.decode() if first in (b'"', b"'") else ""


def append_argument(src: SourceFile, last: Token, words: list[str], script_end: str = "") -> list[Edit]:
    """Add ``words`` to a command after its ``last`` word.

    ``last`` is its own list item: a new item after it, in the list's style (flow ``[a, b]``
    or block ``- a``). Otherwise ``last`` is the string holding the command (compose
    ``command: celery worker``, or a ``sh -c`` script): the words go at the end of the string,
    only when the string ends with the command (``script_end`` is its last word).
    """
    data = src.utf8
    start, end = last.span.start, last.span.end
    if last.own_item:
        quote = _quoted(src, last)
        before = data[:start].rstrip()
        if before.endswith((b"[", b",")):  # flow sequence
            return [Edit(end, end, "".join(f", {quote}{w}{quote}" for w in words))]
        line_start, line_end = _line_bounds(data, start)
        prefix = data[line_start:start].decode("utf-8", "surrogatepass")
        dash = prefix.rstrip()
        if not dash.endswith("-") or dash[:-1].strip():
            return []  # not ``- item`` on a line of its own
        indent = prefix[: len(prefix) - len(prefix.lstrip())]
        newline = src.newline
        return [Edit(line_end, line_end, "".join(f"{newline}{indent}- {quote}{w}{quote}" for w in words))]
    text = data[start:end].decode("utf-8", "surrogatepass")
    if text[:1] in ("|", ">") or "\n" in text:
        return []  # a block or multi-line scalar: not worth the risk
    quote = text[:1] if text[:1] in ('"', "'") else ""
    body = text[1:-1] if quote and text.endswith(quote) and len(text) > 1 else text
    at = end - (1 if quote else 0)
    at -= len(body) - len(body.rstrip())  # before trailing spaces inside the quotes
    body = body.rstrip()
    inner = body[-1:] if body[-1:] in ('"', "'") and not body.endswith(f"\\{body[-1:]}") else ""
    if inner:  # ``sh -c "... worker"`` written as a plain YAML scalar: the script's own quotes
        body = body[:-1]
        at -= 1
    if script_end and not body.endswith(script_end):
        return []
    addition = " " + " ".join(words)
    if quote == '"' and ('"' in addition or "\\" in addition) or quote == "'" and "'" in addition:
        return []
    return [Edit(at, at, addition)]


def set_nested(src: SourceFile, mapping: Node, key: str, child: str, value: str,
               after: str | None = None) -> list[Edit]:
    """``key: {child: value}`` in a block mapping: the child set when ``key`` holds a block
    mapping, else a new two-line entry (``key:`` and the indented ``child: value``)."""
    existing = mapping.get(key)
    if existing is not None:
        return set_scalar(src, existing, child, value) if existing.is_map and existing.get(child) is not None \
            else []
    newline = src.newline
    indent = _entry_indent(src, mapping)
    if indent is None:
        return []
    step = _step(src, mapping, indent)
    return set_scalar(src, mapping, key, f"{newline}{indent}{step}{child}: {value}", after=after, raw_value=True)


def _entry_indent(src: SourceFile, mapping: Node) -> str | None:
    first = next(mapping.pairs(), None)
    if first is None:
        return None
    start = first[1].span.start
    line_start, _ = _line_bounds(src.utf8, start)
    indent = src.utf8[line_start:start].decode("utf-8", "surrogatepass")
    return indent if not indent.strip() else None


def _step(src: SourceFile, mapping: Node, indent: str) -> str:
    """The file's indentation step, from a nested block mapping in ``mapping`` (2 when none)."""
    for _, _, value in mapping.pairs():
        if value.is_map:
            inner = _entry_indent(src, value)
            if inner is not None and len(inner) > len(indent):
                return inner[len(indent):]
    return "  "


def set_scalar(src: SourceFile, mapping: Node, key: str, value: str, after: str | None = None,
               raw_value: bool = False) -> list[Edit]:
    """``key: value`` in a block mapping: the value replaced when the key is there, else a new
    line after the ``after`` key's entry (or the mapping's first key), at the mapping's indent."""
    data = src.utf8
    existing = mapping.get(key)
    if existing is not None:
        if not existing.is_scalar:
            return []
        span = existing.span
        return [Edit(span.start, span.end, value)]
    anchor_key = mapping.key_node(after) if after else None
    if anchor_key is None:
        first = next(mapping.pairs(), None)
        if first is None:
            return []
        anchor_key = first[1]
        insert_before = True
    else:
        insert_before = False
    key_start = anchor_key.span.start
    line_start, line_end = _line_bounds(data, key_start)
    indent = data[line_start:key_start].decode("utf-8", "surrogatepass")
    if indent.strip():
        return []  # a flow mapping or ``- key:``: not a line of its own
    newline = src.newline
    separator = "" if raw_value else " "  # a nested block starts on the next line
    if insert_before:
        return [Edit(line_start, line_start, f"{indent}{key}:{separator}{value}{newline}")]
    entry = mapping.get(after)
    end = entry.span.end if entry is not None else line_end
    _, entry_line_end = _line_bounds(data, max(end - 1, key_start))
    return [Edit(entry_line_end, entry_line_end, f"{newline}{indent}{key}:{separator}{value}")]


def replace_argument(src: SourceFile, token: Token, old: str, new: str) -> list[Edit]:
    """A command word that is its own list item and ends with ``old`` (a flag's value: ``16``,
    ``--concurrency=16``, ``-c16``), with that end replaced by ``new``, the item's quotes kept.
    Nothing for a word inside a string command, a word written with escapes, or a ``new`` the
    item's style cannot hold as it is."""
    if not token.own_item or not old or not token.text.endswith(old):
        return []
    raw = src.utf8[token.span.start:token.span.end].decode("utf-8", "surrogatepass")
    quote = raw[:1] if raw[:1] in ('"', "'") else ""
    if quote and (len(raw) < 2 or not raw.endswith(quote)):
        return []
    body = raw[1:-1] if quote else raw
    if body != token.text:
        return []  # escapes, a folded line: the text is not the written characters
    if quote == '"' and ('"' in new or "\\" in new) or quote == "'" and "'" in new:
        return []
    if not quote and any(not (c.isalnum() or c in "._-/") and c not in old for c in new):
        return []  # a plain scalar keeps only characters that were already safe in it
    end = token.span.start + len(quote) + len(body.encode("utf-8", "surrogatepass"))
    return [Edit(end - len(old.encode("utf-8", "surrogatepass")), end, new)]


def add_block(src: SourceFile, mapping: Node, key: str, lines: list[tuple[int, str]]) -> list[Edit]:
    """``key:`` with a nested block, after the last entry of a block mapping, at the column of its
    keys (also when the mapping is a ``- name: ...`` list item) and with the file's indentation
    step. ``lines`` are (depth below ``key``, text). Nothing when the mapping is a flow mapping or
    already has ``key``, or when its last value ends in a block scalar, an alias, or a line that
    holds more than the value."""
    data = src.utf8
    if not mapping.is_map or mapping.node.flow_style or mapping.get(key) is not None:
        return []
    pairs = list(mapping.pairs())
    if not pairs:
        return []
    first_key, last_key = pairs[0][1], pairs[-1][1]
    line_start, _ = _line_bounds(data, first_key.span.start)
    prefix = data[line_start:first_key.span.start].decode("utf-8", "surrogatepass")
    if prefix.strip() not in ("", "-") or "\t" in prefix:
        return []
    indent = prefix.replace("-", " ")
    leaf = _last_leaf(pairs[-1][2])
    if leaf is None or leaf.span.start < last_key.span.start:
        return []  # an alias: its marks are where the anchor is
    if leaf.is_scalar and leaf.node.style in ("|", ">"):
        return []
    end = leaf.span.end
    _, line_end = _line_bounds(data, max(end - 1, last_key.span.start))
    rest = data[end:line_end].decode("utf-8", "surrogatepass").strip() if end <= line_end else ""
    if rest and not rest.startswith("#"):
        return []
    step = _step(src, mapping, indent)
    newline = src.newline
    text = f"{newline}{indent}{key}:" + "".join(f"{newline}{indent}{step * (depth + 1)}{line}"
                                                 for depth, line in lines)
    return [Edit(line_end, line_end, text)]


def _last_leaf(node: Node) -> Node | None:
    """The node written last inside ``node``: a scalar, or a flow collection (it ends on its bracket)."""
    while not node.is_scalar and not node.node.flow_style:
        children = node.node.value
        if not children:
            return None
        last = children[-1][1] if node.is_map else children[-1]
        node = Node(last, node.src)
    return node


def grace_edits(src: SourceFile, workload, seconds: int) -> tuple[list[Edit], str]:
    """The workload's shutdown grace period set to ``seconds`` (written or added): compose's
    ``stop_grace_period``, else the pod spec's ``terminationGracePeriodSeconds``; and that key."""
    if workload.kind == "compose":
        key = "stop_grace_period"
        return (set_scalar(src, workload.pod, key, f"{seconds}s") if workload.pod is not None else []), key
    key = "terminationGracePeriodSeconds"
    pod = workload.pod
    return (set_scalar(src, pod, key, str(seconds)) if pod is not None and pod.is_map else []), key

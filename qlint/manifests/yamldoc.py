"""YAML documents with positions, loaded safely.

Only PyYAML's *composer* runs (no constructor): nodes keep their marks, aliases stay shared
references instead of being expanded (an alias bomb costs nothing), and readers walk only
the paths they know (``spec.template.spec.containers``), so work stays bounded whatever the
file holds. Templated files (Helm ``{{ }}``, Jinja ``{% %}``) are skipped, not parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import yaml

from qlint.lint.facts import Span
from qlint.lint.source import SourceFile

try:  # libyaml when present: an order of magnitude faster on large files
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_BYTES = 2_000_000
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_MERGED = 1000  # mappings one merged walk visits at most
MAX_MERGED_PAIRS = 20_000  # and pairs: a walk's cost is bounded whatever the anchors hold  # a manifest larger than this is data, not a deployment description
# (CloudFormation's dynamic references, ``{{resolve:ssm:name}}``, are no template syntax.)
_TEMPLATE = re.compile(rb"\{\{(?!resolve:)-?|\{%-?")
_MANIFEST_HINT = re.compile(rb"^(apiVersion|kind|services|Resources|AWSTemplateFormatVersion)\s*:"
                            rb'|^\s*"(Resources|AWSTemplateFormatVersion)"\s*:', re.MULTILINE)  # YAML, or JSON
# Serverless Framework's file holds its CloudFormation under ``resources:``, a key too common
# elsewhere (Helm values) to mark a manifest: the file is known by its name.
SERVERLESS_NAMES = ("serverless.yml", "serverless.yaml")
# Likewise App Engine's (and Cloud Tasks') ``queue.yaml``, whose one key is ``queue:``, and the
# Sidekiq and Rails files Sidekiq's rules read (``config/sidekiq.yml``, ``config/database.yml``).
QUEUE_YAML_NAMES = ("queue.yaml", "queue.yml")
SIDEKIQ_NAMES = ("sidekiq.yml", "sidekiq.yaml")
DATABASE_NAMES = ("database.yml",)
NAMED_MANIFESTS = (*SERVERLESS_NAMES, *QUEUE_YAML_NAMES, *SIDEKIQ_NAMES, *DATABASE_NAMES)


class Skipped(Exception):
    """The file is not read: a template, too large. ``str(exc)`` says why (verbose output)."""


class Invalid(Exception):
    """The file looks like a manifest but is not valid YAML."""


@dataclass
class Node:
    """A YAML node and the source it came from."""

    node: yaml.Node
    src: SourceFile

    # -- structure -------------------------------------------------------------------
    @property
    def is_map(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    @property
    def is_seq(self) -> bool:
        return isinstance(self.node, yaml.SequenceNode)

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode)

    def get(self, key: str) -> "Node | None":
        """The value of ``key`` in a mapping (the last one, as YAML loaders do with duplicates)."""
        if not self.is_map:
            return None
        found = None
        for k, v in self.node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                found = v
        return Node(found, self.src) if found is not None else None

    def key_node(self, key: str) -> "Node | None":
        if not self.is_map:
            return None
        found = None
        for k, _ in self.node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                found = k
        return Node(found, self.src) if found is not None else None

    def path(self, *keys: str) -> "Node | None":
        node: Node | None = self
        for key in keys:
            node = node.get(key) if node is not None else None
        return node

    # -- merge keys (``<<: *anchor``) -------------------------------------------------
    # ``get``/``pairs``/``key_node`` see the mapping's own keys only: fixes edit what is written
    # in this mapping (a key written here overrides a merged one), never the shared anchor.
    # Readers use ``lookup``/``merged_pairs``, which also see what ``<<`` merges in, as YAML
    # loaders do: the mapping's own keys first, then each merged mapping in order (an earlier one
    # wins), recursively. The merged mappings are the anchors' own nodes (nothing is copied), and
    # each is visited once per walk, however often or deeply it is merged (a cycle, a merge bomb).

    def lookup(self, key: str) -> "Node | None":
        """The value of ``key`` with merge keys applied (see above)."""
        for name, _, value in self.merged_pairs():
            if name == key:
                return value
        return None

    def lookup_path(self, *keys: str) -> "Node | None":
        node: Node | None = self
        for key in keys:
            node = node.lookup(key) if node is not None else None
        return node

    def merged_pairs(self) -> Iterator[tuple[str, "Node", "Node"]]:
        """The mapping's pairs with merge keys applied: each key once, with the value that wins."""
        if not self.is_map:
            return
        seen_keys: set[str] = set()
        visited: set[int] = set()
        pending: list[yaml.MappingNode] = [self.node]
        budget = MAX_MERGED_PAIRS
        while pending and len(visited) < MAX_MERGED and budget > 0:
            mapping = pending.pop(0)
            if id(mapping) in visited:
                continue
            visited.add(id(mapping))
            budget -= len(mapping.value)
            own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
            merged: list[yaml.MappingNode] = []
            for k, v in mapping.value:
                if not isinstance(k, yaml.ScalarNode):
                    continue
                if k.tag == MERGE_TAG:
                    sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
                    merged.extend(m for m in sources if isinstance(m, yaml.MappingNode))
                else:
                    own[k.value] = (k, v)  # the last of duplicates, as ``get``
            for name, (k, v) in own.items():
                if name not in seen_keys:
                    seen_keys.add(name)
                    yield name, Node(k, self.src), Node(v, self.src)
            pending[:0] = merged  # this mapping's merges before those of the mappings it was merged with

    def items(self) -> Iterator["Node"]:
        if self.is_seq:
            for item in self.node.value:
                yield Node(item, self.src)

    def pairs(self) -> Iterator[tuple[str, "Node", "Node"]]:
        if self.is_map:
            for k, v in self.node.value:
                if isinstance(k, yaml.ScalarNode):
                    yield k.value, Node(k, self.src), Node(v, self.src)

    # -- values ----------------------------------------------------------------------
    @property
    def text(self) -> str | None:
        """A scalar's value as a string (YAML 1.1 types are not applied: ``"2"`` and ``2`` alike)."""
        return self.node.value if self.is_scalar else None

    def number(self) -> float | None:
        text = self.text
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            return None

    def strings(self) -> list[str] | None:
        """A sequence of scalars as strings, or None when it is something else."""
        if not self.is_seq:
            return None
        out = []
        for item in self.node.value:
            if not isinstance(item, yaml.ScalarNode):
                return None
            out.append(item.value)
        return out

    # -- positions -------------------------------------------------------------------
    @property
    def span(self) -> Span:
        return Span(_offset(self.src, self.node.start_mark), _offset(self.src, self.node.end_mark))

    @property
    def line_start(self) -> Span:
        """An anchor at the node's first character (a line anchor: the whole line is underlined)."""
        start = _offset(self.src, self.node.start_mark)
        return Span(start, start)


def _offset(src: SourceFile, mark: yaml.Mark) -> int:
    """A mark (line and column in characters) as an offset into ``src.utf8``."""
    starts = src.line_starts
    if mark.line >= len(starts):
        return len(src.utf8)
    start = starts[mark.line]
    end = starts[mark.line + 1] if mark.line + 1 < len(starts) else len(src.utf8)
    line = src.utf8[start:end].decode("utf-8", "surrogatepass")
    return start + len(line[:mark.column].encode("utf-8", "surrogatepass"))


def looks_like_manifest(raw: bytes) -> bool:
    return _MANIFEST_HINT.search(raw) is not None


def documents(src: SourceFile) -> list[Node]:
    """The documents of a YAML file, as nodes. Raises ``Skipped`` or ``Invalid``."""
    raw = src.raw
    if len(raw) > MAX_BYTES:
        raise Skipped(f"{len(raw)} bytes: larger than a manifest qlint reads ({MAX_BYTES} bytes)")
    if not looks_like_manifest(raw) and src.path.name not in NAMED_MANIFESTS:  # a CI workflow, a data file
        raise Skipped("not a Kubernetes, docker-compose or CloudFormation manifest (no top-level `apiVersion`, "
                      "`kind`, `services` or `Resources`)")
    if _TEMPLATE.search(raw):
        raise Skipped("a template (Helm `{{ }}` or Jinja `{% %}`): render it and pipe the output to "
                      "`qlint check --stdin-filename rendered.yaml -`")
    try:
        loader = _Loader(src.text)
        try:
            nodes = []
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    nodes.append(Node(node, src))
            return nodes
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Invalid(f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise Invalid("invalid YAML: nested too deeply to read") from None

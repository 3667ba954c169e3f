"""Sidekiq processes in the project's containers, with ``config/sidekiq.yml`` and ``config/database.yml``.

A container runs Sidekiq when a word of its command is the ``sidekiq`` program (``bundle exec
sidekiq``, ``sh -c "... sidekiq -C ..."``). Its options come from its flags (``-t``/``--timeout``,
``-c``/``--concurrency``, ``-C``/``--config``, ``-e``/``--environment``), else from the config file
(the ``-C`` one, else ``config/sidekiq.yml``: top-level keys, written ``:timeout:`` or ``timeout:``,
an environment's section winning), else Sidekiq's defaults (``lib/sidekiq/config.rb``): a 25 s
shutdown timeout and a concurrency of 5. A value written with ERB (``<%= ENV[...] %>``) is unknown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qlint.lint.facts import Span
from qlint.manifests.commands import command_lines, program_name
from qlint.manifests.workloads import Container, Token, Workload
from qlint.manifests.yamldoc import Node

TIMEOUT_DEFAULT = 25.0
CONCURRENCY_DEFAULT = 5
ENVIRONMENT_VARIABLES = ("RAILS_ENV", "RACK_ENV", "APP_ENV")


@dataclass
class Setting:
    value: float | None  # None: written but unknown (ERB, a variable)
    source: str  # "default", "flag -t", "config/sidekiq.yml"
    span: Span | None = None  # where it is written (in ``path``)
    path: str | None = None


@dataclass
class Process:
    workload: Workload
    container: Container
    timeout: Setting
    concurrency: Setting
    environment: str | None


def _program(word: str) -> bool:
    return program_name(word) in ("sidekiq", "sidekiqswarm")


_FLAGS = {"-t": "timeout", "--timeout": "timeout", "-c": "concurrency", "--concurrency": "concurrency",
          "-C": "config", "--config": "config", "-e": "environment", "--environment": "environment"}


def _flags(words: list[Token]) -> dict[str, Token]:
    found: dict[str, Token] = {}
    index = 0
    while index < len(words):
        text = words[index].text
        name, eq, value = text.partition("=")
        if name in _FLAGS and eq:
            found[_FLAGS[name]] = Token(value, words[index].span, words[index].own_item, words[index].path)
        elif text in _FLAGS and index + 1 < len(words):
            found[_FLAGS[text]] = words[index + 1]
            index += 1
        index += 1
    return found


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _config_value(config: Node | None, key: str, environment: str | None) -> Node | None:
    """``:key:`` or ``key:`` in the environment's section, else at the top (Sidekiq merges the
    environment's section over the top level)."""
    if config is None or not config.is_map:
        return None
    for scope in ([config.lookup(f":{environment}") or config.lookup(environment)] if environment else []) + [config]:
        if scope is None or not scope.is_map:
            continue
        found = scope.lookup(f":{key}") or scope.lookup(key)
        if found is not None:
            return found
    return None


def processes(workloads: list[Workload], configs: dict[str, Node], root: str) -> list[Process]:
    """Every Sidekiq process the workloads start, with its timeout and concurrency. ``configs``:
    the project's sidekiq.yml documents by path."""
    out = []
    for workload in workloads:
        for container in workload.containers:
            if not any("sidekiq" in token.text for token in container.argv):
                continue  # (the model is built twice a run: most containers run no Sidekiq)
            # ``bundle exec sidekiq``: the program is a word of one of the container's commands.
            found = next(((words, i) for words in command_lines(container.argv)
                          for i, w in enumerate(words) if _program(w.text)), None)
            if found is None:
                continue
            words, start = found
            flags = _flags(words[start + 1:])
            env_token = flags.get("environment")
            environment = env_token.text if env_token is not None else next(
                (container.env[v][0] for v in ENVIRONMENT_VARIABLES if v in container.env and container.env[v][0]),
                None)
            config_token = flags.get("config")
            wanted = config_token.text if config_token is not None else os.path.join("config", "sidekiq.yml")
            config, config_path = _find_config(configs, wanted, root)
            settings = {}
            for key, default in (("timeout", TIMEOUT_DEFAULT), ("concurrency", float(CONCURRENCY_DEFAULT))):
                token = flags.get(key)
                if token is not None:
                    settings[key] = Setting(_number(token.text), f"`{_flag_name(key)}`", token.span,
                                            token.path or workload.path)
                    continue
                node = _config_value(config, key, environment)
                if node is not None:
                    settings[key] = Setting(node.number() if node.is_scalar else None, f"`{key}` in "
                                            f"{os.path.relpath(config_path, root)}", node.span, config_path)
                else:
                    settings[key] = Setting(default, "default")
            out.append(Process(workload, container, settings["timeout"], settings["concurrency"], environment))
    return out


def _flag_name(key: str) -> str:
    return {"timeout": "-t", "concurrency": "-c"}[key]


def _find_config(configs: dict[str, Node], wanted: str, root: str) -> tuple[Node | None, str | None]:
    """The config file a ``-C`` path names: relative to the project root, or by its longest tail
    (a path inside the image, ``/app/config/sidekiq.yml``)."""
    if "$" in wanted or "<%" in wanted:
        return None, None
    parts = [p for p in os.path.normpath(wanted).split(os.sep) if p not in ("", ".", "..")]
    for start in range(len(parts)):
        tail = os.sep + os.path.join(*parts[start:])
        hits = [(path, node) for path, node in configs.items() if os.path.abspath(path).endswith(tail)]
        if len(hits) == 1:
            return hits[0][1], hits[0][0]
        if len(hits) > 1:
            exact = [h for h in hits if os.path.abspath(h[0]) == os.path.abspath(os.path.join(root, wanted))]
            return (exact[0][1], exact[0][0]) if exact else (None, None)
    return None, None


def database_pool(databases: dict[str, Node], environment: str) -> tuple[float | None, Node | None, str | None]:
    """The ``pool`` of the environment's entry in the project's one ``database.yml`` (merge keys
    followed; a nested ``primary:`` entry of a multi-database app too)."""
    if len(databases) != 1:
        return None, None, None
    path, doc = next(iter(databases.items()))
    entry = doc.lookup(environment) if doc.is_map else None
    if entry is None or not entry.is_map:
        return None, None, None
    pool = entry.lookup("pool")
    if pool is None and entry.lookup("primary") is not None:
        pool = entry.lookup("primary").lookup("pool")
    if pool is None or not pool.is_scalar:
        return None, None, path
    return pool.number(), pool, path

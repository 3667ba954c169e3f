"""Worker commands: which framework runs, in which role, with which flags.

A container's ``command``/``args`` (or a compose ``entrypoint``/``command``, or a Procfile
line) is unwrapped from the launchers around it (``sh -c``, ``exec``, ``dumb-init --``,
``tini --``, ``poetry run``, ``uv run``, ``python -m``, ``newrelic-admin run-program``,
``ddtrace-run``, Django's ``manage.py`` or ``django-admin``), then read with the framework's own CLI table
(``CLI`` in each ``qlint.frameworks`` module).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from qlint.manifests.workloads import Token

LAUNCHERS = frozenset({"exec", "dumb-init", "tini", "--", "ddtrace-run", "opentelemetry-instrument", "nice",
                       "gosu", "su-exec", "chpst"})
RUNNERS = {"poetry": "run", "uv": "run", "pipenv": "run", "pdm": "run", "hatch": "run",
           "newrelic-admin": "run-program", "rye": "run"}
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash"})
PYTHONS = frozenset({"python", "python3", "python3.10", "python3.11", "python3.12", "python3.13"})
SEPARATORS = frozenset({"&&", "||", ";", "|"})
# Programs that run a Django project's management commands (``manage.py rqworker``).
DJANGO_RUNNERS = frozenset({"manage.py", "django-admin", "django-admin.py"})


@dataclass(frozen=True)
class StopSignals:
    """A worker for which SIGTERM, the signal Kubernetes and Docker stop containers with, is not a
    graceful stop (QLT704): only ``graceful`` lets running tasks finish."""

    graceful: str  # the signal that lets running tasks finish (Huey: ``SIGINT``)
    interrupts: str  # what the other stop signal does to running tasks, as a sentence
    flag: str = ""  # the flag (its key) that names the graceful signal instead: ``INT`` or ``TERM`` (Huey ``-g``)
    fix: tuple[str, ...] = ()  # the words that make SIGTERM graceful (Huey: ``-g TERM``)
    since: str = ""  # the first release that has ``flag`` (older ones refuse it)


@dataclass(frozen=True)
class Probe:
    """A command that succeeds while this container's worker is alive (QLT705's fix), as the
    words after the program. ``{flag}`` is the worker's value of that flag, else its default in
    ``defaults`` (no probe when it has neither); a ``[...]`` part is left out when a flag inside
    it has no value."""

    words: str
    defaults: tuple[tuple[str, str], ...] = ()
    # A flag's value is used only when it matches this pattern (else no probe).
    shapes: tuple[tuple[str, str], ...] = ()
    host: tuple[str, ...] = ()  # spellings of the host name inside values; the probe says ``$HOSTNAME``
    # Settings of the app, variables of the container's env or flags of the worker that, when
    # set, must start with one of the values for the probe to answer at all.
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class WorkerCli:
    """A framework's worker command line, declared by its framework module."""

    programs: tuple[str, ...]  # executables (``celery``, ``huey_consumer.py``) and ``python -m`` modules
    roles: dict[str, str]  # subcommand -> "worker" | "scheduler" | "worker+scheduler"; "" key: the program itself
    django_commands: dict[str, str] = field(default_factory=dict)  # ``manage.py rqworker`` -> role
    value_flags: dict[str, str] = field(default_factory=dict)  # ``-c``/``--concurrency`` -> "concurrency"
    bool_flags: dict[str, str] = field(default_factory=dict)  # ``-B``/``--beat`` -> "beat"
    # Sizing the process pool (QLT402/QLT403): the flags that set it, the one a fix writes, the
    # setting in the app's configuration that sets it too, and what happens when nothing does.
    pool_flags: tuple[str, ...] = ()
    pool_fix: str = ""
    pool_setting: str = ""
    pool_default: str = ""
    # What the pool starts when nothing sizes it, per pool kind (a value of ``kind_flag``; the ""
    # key for a framework with one kind), as a message fragment: "the prefork pool starts one child
    # process per CPU ...". An empty fragment: that pool ignores its size (Celery's ``solo`` runs one
    # task at a time). A kind that is not listed is not judged. When empty, ``pool_default`` is
    # what the framework's process pool starts.
    pool_defaults: tuple[tuple[str, str], ...] = ()
    # The processes the worker starts (QLT403, QLT410): the flags whose value counts them (a
    # ``MAX,MIN`` value counts MAX; later flags win over earlier ones when both are given), the
    # subcommands that start them (empty: every worker command), and the flag that says what the
    # count counts, with the values that mean processes, its default, and the setting in the
    # app's configuration that chooses it too (Celery ``-P``/``worker_pool``, prefork).
    process_flags: tuple[str, ...] = ()
    process_commands: tuple[str, ...] = ()
    kind_flag: str = ""
    process_kinds: tuple[str, ...] = ()
    kind_default: str = ""
    kind_setting: str = ""
    # A per-process memory bound after which a process is replaced (QLT410): its flag and its
    # setting, in units of ``memory_unit`` bytes, checked only between tasks.
    memory_flag: str = ""
    memory_setting: str = ""
    memory_unit: int = 1
    probe: Probe | None = None  # a liveness probe for the worker (QLT705)
    # How long the worker waits for running tasks when told to stop, when that is a setting of
    # its own (Dramatiq ``--worker-shutdown-timeout``, milliseconds, 600 s by default).
    shutdown_flag: str = ""
    shutdown_default: float = 0.0  # seconds
    shutdown_scale: float = 1.0  # flag units per second
    time_limit_flag: str = ""  # a CLI flag that bounds every task (Celery ``--time-limit``), seconds
    adds_scheduler: str = ""  # a flag that runs the scheduler inside the worker (Celery ``-B``)
    removes_scheduler: str = ""  # a flag that keeps a scheduler-by-default out (Huey ``-n``)
    # The shutdown wait as an attribute of the worker's settings class (arq ``job_completion_wait``,
    # seconds; ``shutdown_default`` when the class does not set it).
    shutdown_setting: str = ""
    stop_signals: StopSignals | None = None  # SIGTERM interrupts running tasks (Huey)
    # A flag (its key) that makes the worker exit once its queues are empty (RQ, arq ``--burst``);
    # a settings class attribute of the same name turns it on too (arq ``burst = True``).
    burst_flag: str = ""


@dataclass
class Flag:
    value: str | None  # None for a boolean flag
    token: Token


@dataclass
class WorkerCommand:
    framework: str
    roles: set[str]  # "worker", "scheduler"
    flags: dict[str, Flag]
    positional: list[Token]
    tokens: list[Token]
    cli: WorkerCli | None = None
    subcommand: str = ""  # ``worker``, ``worker-pool``, a Django command; "" for programs without one
    django_command: str = ""  # ``celery`` in ``manage.py celery beat`` (the subcommand is ``beat``)
    # The words that run the program, to run another of its commands the same way (a probe):
    # ``python -m``, ``poetry run``; launchers (``exec``, ``tini --``, ``VAR=value``) left out.
    runner: tuple[str, ...] = ()

    @property
    def program(self) -> str:
        """The command as a reader names it: ``celery worker``, ``manage.py rqworker``, ``arq``."""
        name = os.path.basename(self.tokens[0].text) if self.tokens else self.framework
        return " ".join(word for word in (name, self.django_command, self.subcommand) if word)


def _words(argv: list[Token]) -> list[list[Token]]:
    """Commands in ``argv``: shell scripts (``sh -c "a && b; c"``) split into their commands."""
    if len(argv) >= 3 and os.path.basename(argv[0].text) in SHELLS and argv[1].text.startswith("-") and \
            "c" in argv[1].text:
        script = argv[2]
        lexer = shlex.shlex(script.text, posix=True, punctuation_chars=";&|")  # ``a;b`` splits at the ``;``
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            words = list(lexer)
        except ValueError:
            words = script.text.split()
        commands, current = [], []
        for word in words:
            if word and set(word) <= set(";&|"):
                commands.append(current)
                current = []
            else:
                current.append(Token(word, script.span, False))
        commands.append(current)
        return [c for c in commands if c]
    return [argv]


def _unwrap(argv: list[Token]) -> list[Token]:
    i = 0
    while i < len(argv):
        word = os.path.basename(argv[i].text)
        if "=" in argv[i].text and not argv[i].text.startswith("-") and i == 0 or word in LAUNCHERS:
            i += 1  # ``VAR=value cmd``, ``exec cmd``
        elif word in RUNNERS and i + 1 < len(argv) and argv[i + 1].text == RUNNERS[word]:
            i += 2
        elif word in PYTHONS:
            i += 1
            while i < len(argv) and argv[i].text.startswith("-") and argv[i].text != "-m":
                i += 1  # ``python -u -m celery``
            if i < len(argv) and argv[i].text == "-m":
                i += 1
        else:
            break
    return argv[i:]


def _runner(prefix: list[Token]) -> tuple[str, ...]:
    """The words of ``prefix`` (what ``_unwrap`` removed) that are needed to run the program."""
    out: list[str] = []
    i = 0
    while i < len(prefix):
        word = os.path.basename(prefix[i].text)
        if word in RUNNERS and i + 1 < len(prefix) and prefix[i + 1].text == RUNNERS[word] and \
                word != "newrelic-admin":
            out += [prefix[i].text, prefix[i + 1].text]
            i += 2
        elif word in PYTHONS:
            out.append(prefix[i].text)
            i += 1
            while i < len(prefix) and prefix[i].text.startswith("-"):
                out.append(prefix[i].text)  # ``-u``, ``-m``
                i += 1
        else:
            i += 1
    return tuple(out)


def parse(argv: list[Token], clis: dict[str, WorkerCli]) -> list[WorkerCommand]:
    found = []
    for raw in _words(argv):
        words = _unwrap(raw)
        if not words:
            continue
        runner = _runner(raw[:len(raw) - len(words)])
        program = os.path.basename(words[0].text)
        rest = words[1:]
        if program in DJANGO_RUNNERS and rest:
            command = rest[0].text
            for framework, cli in clis.items():
                if command in cli.django_commands:
                    read = _django(framework, cli, command, rest[1:], words)
                    if read is None:
                        continue  # ``manage.py celery flower``: another of the framework's commands
                    read.framework = framework
                    read.runner = runner
                    found.append(read)
            continue
        for framework, cli in clis.items():
            if program in cli.programs or program.removesuffix(".py") in cli.programs:
                command = _command(cli, rest, words)
                if command is not None:
                    command.framework = framework
                    command.runner = runner
                    found.append(command)
    for command in found:
        command.cli = clis[command.framework]
    return found


def _django(framework: str, cli: WorkerCli, command: str, rest: list[Token],
            words: list[Token]) -> WorkerCommand | None:
    """A Django management command of the framework's. One named as the framework wraps its command
    line (django-celery's ``manage.py celery worker|beat|flower``) and runs what its subcommand says
    (None for a subcommand that is no worker or scheduler); the others (``rqworker``, ``run_huey``)
    run the role the framework's table gives them."""
    if command == framework and "" not in cli.roles:
        read = _command(cli, rest, words)
        if read is not None:
            read.django_command = command
        return read
    read = _read("", cli, {cli.django_commands[command]}, rest, words)
    read.subcommand = command
    return read


def _command(cli: WorkerCli, rest: list[Token], words: list[Token]) -> WorkerCommand | None:
    if "" in cli.roles:
        return _read("", cli, {cli.roles[""]}, rest, words)
    # The subcommand is the first positional word: ``celery -A proj worker`` has ``-A proj`` first.
    i = 0
    while i < len(rest):
        text = rest[i].text
        if text in cli.roles:
            command = _read("", cli, {cli.roles[text]}, rest[:i] + rest[i + 1:], words)
            command.subcommand = text
            return command
        if text.startswith("-"):
            i += 1 if ("=" in text or text not in cli.value_flags) else 2
            continue
        return None  # another subcommand (``celery inspect``, ``rq info``)
    return None


def _read(framework: str, cli: WorkerCli, roles: set[str], rest: list[Token], words: list[Token]) -> WorkerCommand:
    flags: dict[str, Flag] = {}
    positional: list[Token] = []
    i = 0
    while i < len(rest):
        token = rest[i]
        text = token.text
        name, eq, value = text.partition("=")
        if name in cli.value_flags:
            if eq:
                flags[cli.value_flags[name]] = Flag(value, token)
            elif i + 1 < len(rest):
                flags[cli.value_flags[name]] = Flag(rest[i + 1].text, token)
                i += 1
            i += 1
            continue
        if text in cli.bool_flags:
            flags[cli.bool_flags[text]] = Flag(None, token)
            i += 1
            continue
        short = text[:2]
        if text.startswith("-") and not text.startswith("--") and len(text) > 2 and short in cli.value_flags:
            flags[cli.value_flags[short]] = Flag(text[2:], token)  # ``-c4``
        elif not text.startswith("-"):
            positional.append(token)
        i += 1
    roles = {part for role in roles for part in role.split("+")}  # "worker+scheduler": both at once
    if cli.adds_scheduler and cli.adds_scheduler in flags:
        roles.add("scheduler")
    if cli.removes_scheduler and cli.removes_scheduler in flags:
        roles.discard("scheduler")
    return WorkerCommand(framework, roles, flags, positional, words)

"""Worker commands: which framework runs, in which role, with which flags.

A container's ``command``/``args`` (or a compose ``entrypoint``/``command``, or a Procfile
line) is unwrapped from the launchers around it (``sh -c``, ``su -c``, ``exec``, ``dumb-init --``,
``tini --``, ``gosu USER``, ``nice -n N``, ``env VAR=value``, ``wait-for-it.sh HOST -- ...``,
``watchmedo auto-restart ... --``, ``poetry run``, ``uv run``, ``python -m``, ``newrelic-admin
run-program``, ``ddtrace-run``, Django's ``manage.py``, ``django-admin`` or ``nautobot-server``),
then read with the framework's own CLI table (``CLI`` in each ``qlint.frameworks`` module).

A wrapper script is followed too: ``./docker/entrypoint.sh celery -A proj worker`` passes its
arguments on (the words after it are the command), and a script named alone
(``/entrypoint-celery-worker.sh``) is read when the repository holds it: the worker its own
lines start runs in the container, with ``"$@"`` standing for the words after the script. A
script that reads its arguments (``case "$1"``) or starts several workers is a dispatcher whose
branch qlint cannot tell: it is not followed.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable

from qlint.manifests.workloads import Token

LAUNCHERS = frozenset({"exec", "dumb-init", "tini", "--", "ddtrace-run", "opentelemetry-instrument", "nice",
                       "gosu", "su-exec", "chpst", "env", "timeout", "setpriv"})
# Launchers whose next word is an argument of their own, not the command: ``gosu USER cmd``.
LAUNCHER_ARGUMENT = frozenset({"gosu", "su-exec"})
# Launchers whose options take a value of their own (``nice -n 10``, ``chpst -u user``, ``env -u NAME``).
LAUNCHER_VALUES = {"nice": frozenset({"-n", "--adjustment"}), "chpst": frozenset({"-u", "-U", "-e", "-/", "-n", "-l",
                   "-L", "-m", "-d", "-o", "-p", "-f", "-c", "-r", "-t"}), "env": frozenset({"-u", "--unset", "-C",
                   "--chdir", "-S"}), "dumb-init": frozenset({"-r", "--rewrite"}), "tini": frozenset({"-p", "-e"}),
                   "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}), "setpriv": frozenset()}
# Programs that wait for something, then run the command after ``--`` (``wait-for-it.sh db:5432 -- cmd``).
WAITERS = frozenset({"wait-for-it", "wait-for-it.sh", "wait-for", "wait-for.sh", "wait-for-it.bash"})
# Programs that restart the command after ``--`` whenever a source file changes: a developer's
# loop, never a deployment.
RELOADERS = {"watchmedo": "auto-restart"}
RUNNERS = {"poetry": "run", "uv": "run", "pipenv": "run", "pdm": "run", "hatch": "run",
           "newrelic-admin": "run-program", "rye": "run"}
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash"})
PYTHONS = frozenset({"python", "python3", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14"})
SEPARATORS = frozenset({"&&", "||", ";", "|"})
# Programs that run a Django project's management commands (``manage.py rqworker``); Nautobot's
# ``nautobot-server`` is its ``manage.py`` (``nautobot-server celery worker``).
DJANGO_RUNNERS = frozenset({"manage.py", "django-admin", "django-admin.py", "nautobot-server"})
SCRIPT_SUFFIXES = (".sh", ".bash")
# How deep wrapper scripts are followed (a script that runs a script that runs the worker).
MAX_SCRIPT_DEPTH = 3
# A word that is wholly a variable: it may stand for several words, flags among them (an
# unquoted ``$ARGS``, ``"${EXTRA[@]}"``, ``"$@"``, Kubernetes ``$(ARGS)``).
_VARIABLE_WORD = re.compile(r"^\$(\{[^}]*\}|\([A-Za-z_][A-Za-z0-9_]*\)|[A-Za-z_][A-Za-z0-9_]*|[@*])$")
# ``"$@"``, ``${@}``, ``$*``: every argument of the script.
_ALL_ARGUMENTS = frozenset({"$@", "${@}", "$*", "${*}"})
# ``${BIN_DIR}celery``: a program path that starts with a variable (the folder it is installed in).
_VARIABLE_PREFIX = re.compile(r"^\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)(?=.)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# Reads a script the repository holds, by the path a command names it with: its command lines
# as words (None when the repository holds no such script).
ScriptReader = Callable[[str], "list[list[Token]] | None"]


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
    # What the pool starts when nothing sizes it, per pool kind (a value of ``kind_flag``; the ""
    # key for a framework with one kind), as a message fragment: "the prefork pool starts one child
    # process per CPU ...". An empty fragment: that pool ignores its size (Celery's ``solo`` runs one
    # task at a time). A kind that is not listed is not judged. Each fragment must hold whatever
    # else the command says (no thread count that a flag may change).
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
    # Values of ``kind_flag`` that still let ``kind_setting`` choose: Celery >= 5.1 reads
    # ``-P prefork`` (the CLI's own default) as "the configured ``worker_pool``" (bin/worker.py
    # ``WorkersPool.convert``).
    kind_deferring: tuple[str, ...] = ()
    # Child recycling (QLT401, QLT405): the flags (their keys) that replace a pool's processes after
    # some tasks or some memory, honoured only by ``process_kinds``.
    recycling_flags: tuple[str, ...] = ()
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
    # An attribute of the worker's settings class that, set to False, leaves SIGTERM and SIGINT to
    # Python's defaults (arq ``handle_signals``): no graceful stop at all.
    signals_setting: str = ""
    stop_signals: StopSignals | None = None  # SIGTERM interrupts running tasks (Huey)
    # A flag (its key) that makes the worker exit once its queues are empty (RQ, arq ``--burst``);
    # a settings class attribute of the same name turns it on too (arq ``burst = True``).
    burst_flag: str = ""
    # Flags (their keys) that turn the command into a one-off check that starts no worker (arq
    # ``--check``, a health probe).
    probe_flags: tuple[str, ...] = ()
    # Flags (their keys) that make the worker reload on code changes: a developer's run (arq and
    # Dramatiq ``--watch DIR``, Taskiq ``--reload``).
    dev_flags: tuple[str, ...] = ()
    # The flag (its key) that chooses how jobs are deserialized, and what the worker uses when it
    # is not given (RQ ``-S/--serializer``: pickle).
    serializer_flag: str = ""
    serializer_default: str = ""
    serializer_fix: str = ""  # the words that choose a serializer that runs no code
    # A flag (its key) that makes the worker run code the project chose (RQ ``-w/--worker-class``):
    # what that class does with the serializer qlint does not know.
    class_flags: tuple[str, ...] = ()
    # A flag (its key) that turns off the parsing of annotated parameters the framework does
    # otherwise (Taskiq ``--no-parse``: arguments arrive as decoded JSON).
    no_parse_flag: str = ""


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
    # Words that are wholly a variable (``$ARGS``, ``"${EXTRA[@]}"``, ``"$@"`` with nothing to stand
    # for): they may hold flags qlint cannot see, so a rule about a flag's absence stays silent.
    opaque: list[Token] = field(default_factory=list)
    # Why this is a developer's run, not a deployment ("" for none): a reloader around it
    # (``watchmedo auto-restart``) or a reload flag (``--watch``, ``--reload``).
    development: str = ""
    # The script the command is written in when a container runs it through a script the
    # repository holds (``/entrypoint-celery-worker.sh``), "" when it is written in the manifest.
    script: str = ""

    @property
    def program(self) -> str:
        """The command as a reader names it: ``celery worker``, ``manage.py rqworker``, ``arq``."""
        name = program_name(self.tokens[0].text) if self.tokens else self.framework
        return " ".join(word for word in (name, self.django_command, self.subcommand) if word)


def _words(argv: list[Token]) -> tuple[list[list[Token]], str]:
    """Commands in ``argv``: shell scripts (``sh -c "a && b; c"``, ``su USER -c "..."``, behind
    launchers) split into their commands; and why ``argv`` is a developer's run ("" if it is not)."""
    words, development = _unwrap(argv)
    script = _script_argument(words)
    if script is None:
        return [argv], development
    lexer = shlex.shlex(script.text, posix=True, punctuation_chars=";&|")  # ``a;b`` splits at the ``;``
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        split = list(lexer)
    except ValueError:
        split = script.text.split()
    commands, current = [], []
    for word in split:
        if word and set(word) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(Token(word, script.span, False, script.path))
    commands.append(current)
    return [c for c in commands if c], development


def _script_argument(words: list[Token]) -> Token | None:
    """The script string of ``sh -c SCRIPT`` (``bash -lc``, ``sh -e -c``) or of ``su [-] [USER]
    -c|--command SCRIPT [USER]``."""
    if not words:
        return None
    program = os.path.basename(words[0].text)
    rest = words[1:]
    if program in SHELLS or words[0].text in SHELLS:
        for j, word in enumerate(rest):
            text = word.text
            if not text.startswith("-"):
                return None  # ``sh script.sh``: a script file, not a string
            if not text.startswith("--") and "c" in text[1:]:
                return rest[j + 1] if j + 1 < len(rest) else None
        return None
    if program == "su":
        for j, word in enumerate(rest):
            if word.text in ("-c", "--command") and j + 1 < len(rest):
                return rest[j + 1]
            if word.text.startswith("--command="):
                return Token(word.text.partition("=")[2], word.span, False, word.path)
    return None


def _unwrap(argv: list[Token]) -> tuple[list[Token], str]:
    """The words from the program on, and why the command is a developer's run ("" when it is not)."""
    i = 0
    development = ""
    while i < len(argv):
        text = argv[i].text
        word = os.path.basename(text)
        if _ASSIGNMENT.match(text) and (i == 0 or _launcher_before(argv, i)):
            i += 1  # ``VAR=value cmd``, ``env VAR=value cmd``
        elif word in LAUNCHERS:
            i += 1
            if word != "--":
                i = _skip_options(argv, i, LAUNCHER_VALUES.get(word, frozenset()))
            if word in LAUNCHER_ARGUMENT and i < len(argv):
                i += 1  # ``gosu app``
            elif word == "timeout" and i < len(argv):
                i += 1  # ``timeout 3600``
        elif word in WAITERS or word in RELOADERS and i + 1 < len(argv) and argv[i + 1].text == RELOADERS[word]:
            after = next((j for j in range(i + 1, len(argv)) if argv[j].text == "--"), None)
            if after is None:
                return [], development  # nothing to run after the wait, or a form qlint does not read
            if word in RELOADERS:
                development = f"runs under `{word} {RELOADERS[word]}`, which restarts it on each code change"
            i = after + 1
        elif (word in SHELLS or text in SHELLS) and i + 1 < len(argv) and is_script(argv[i + 1].text):
            i += 1  # ``sh ./docker/run-worker.sh``: the script is the program
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
    return argv[i:], development


def _launcher_before(argv: list[Token], i: int) -> bool:
    """Whether the word before ``i`` is a launcher or an assignment (``env A=1 B=2 cmd``)."""
    before = argv[i - 1].text
    return os.path.basename(before) in LAUNCHERS or _ASSIGNMENT.match(before) is not None


def _skip_options(argv: list[Token], i: int, with_values: frozenset[str]) -> int:
    """Past a launcher's options (``tini -g --``, ``nice -n 10``, ``nice -5``); ``--`` is left for
    the loop (it is a launcher of its own)."""
    while i < len(argv) and argv[i].text.startswith("-") and argv[i].text != "--":
        name = argv[i].text.partition("=")[0]
        i += 2 if name in with_values and "=" not in argv[i].text else 1
    return i


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


def command_lines(argv: list[Token]) -> list[list[Token]]:
    """The commands ``argv`` runs, each from its program on: a shell script (``sh -c "a && b"``)
    split into its commands, launchers (``exec``, ``dumb-init --``, ``env X=1``) left out. For
    programs that are not a Python framework's worker (Sidekiq) read with the same shell rules."""
    return [_unwrap(command)[0] for command in _words(argv)[0]]


def program_name(text: str) -> str:
    """The program a word runs: ``/usr/local/bin/celery`` and ``${BIN}celery`` run ``celery``."""
    return os.path.basename(_VARIABLE_PREFIX.sub("", text))


def is_script(text: str) -> bool:
    return program_name(text).endswith(SCRIPT_SUFFIXES)


def parse(argv: list[Token], clis: dict[str, WorkerCli], scripts: ScriptReader | None = None,
          _depth: int = 0) -> list[WorkerCommand]:
    """The worker and scheduler commands ``argv`` runs. ``scripts`` reads a wrapper script the
    repository holds (see the module's docstring)."""
    found = []
    commands, outer = _words(argv)
    for raw in commands:
        words, development = _unwrap(raw)
        development = development or outer
        if not words:
            continue
        runner = _runner(raw[:len(raw) - len(words)])
        program = program_name(words[0].text)
        rest = words[1:]
        here: list[WorkerCommand] = []
        if program in DJANGO_RUNNERS and rest:
            command = rest[0].text
            for framework, cli in clis.items():
                if command in cli.django_commands:
                    read = _django(framework, cli, command, rest[1:], words)
                    if read is None:
                        continue  # ``manage.py celery flower``: another of the framework's commands
                    read.framework = framework
                    read.runner = runner
                    here.append(read)
        else:
            for framework, cli in clis.items():
                if program in cli.programs or program.removesuffix(".py") in cli.programs:
                    command = _command(cli, rest, words)
                    if command is not None:
                        command.framework = framework
                        command.runner = runner
                        here.append(command)
            if not here and is_script(words[0].text) and _depth < MAX_SCRIPT_DEPTH:
                here = _through_script(words, clis, scripts, _depth)
        for command in here:
            command.development = command.development or development
        found.extend(here)
    for command in found:
        command.cli = clis[command.framework]
        if command.cli.probe_flags and any(flag in command.flags for flag in command.cli.probe_flags):
            command.roles = set()  # ``arq --check``: a health probe, no worker
        for flag in command.cli.dev_flags:
            if flag in command.flags and not command.development:
                command.development = f"runs with `{command.flags[flag].token.text}`, which reloads it on each " \
                                      "code change"
    return [command for command in found if command.roles]


def _through_script(words: list[Token], clis: dict[str, WorkerCli], scripts: ScriptReader | None,
                    depth: int) -> list[WorkerCommand]:
    """A wrapper script: the command after it when it passes its arguments on
    (``entrypoint.sh celery worker``), else the worker its own lines start, when the repository
    holds it, with ``"$@"`` standing for the words after it (a script that starts several, or
    reads its arguments, is not followed)."""
    rest = words[1:]
    if rest:
        passed = parse(rest, clis, scripts, depth + 1)
        if passed:
            return passed
    lines = scripts(words[0].text) if scripts is not None else None
    out: list[WorkerCommand] = []
    for line in lines or ():
        argv: list[Token] = []
        for token in line:
            if token.text in _ALL_ARGUMENTS:
                argv.extend(rest)  # the words the container passes (none: ``"$@"`` is empty)
            else:
                argv.append(token)
        for command in parse(argv, clis, scripts, depth + 1):
            command.script = command.script or (line[0].path or "" if line else "")
            out.append(command)
    # A script that starts several workers or schedulers (the branches of a dispatcher, say) runs
    # one of them or all: qlint cannot tell which, so it reads none.
    return out if len(out) == 1 else []


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
    opaque: list[Token] = []
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
        elif _VARIABLE_WORD.match(text):
            opaque.append(token)  # ``$EXTRA_ARGS``: flags, perhaps
        elif not text.startswith("-"):
            positional.append(token)
        i += 1
    roles = {part for role in roles for part in role.split("+")}  # "worker+scheduler": both at once
    if cli.adds_scheduler and cli.adds_scheduler in flags:
        roles.add("scheduler")
    if cli.removes_scheduler and cli.removes_scheduler in flags:
        roles.discard("scheduler")
    return WorkerCommand(framework, roles, flags, positional, words, opaque=opaque)

"""What qlint knows about task input and broker trust, across frameworks.

- Which task parameters carry message input, and which the framework fills itself (a bound
  Celery task's ``self``, arq's ``ctx``, Huey's ``task`` under ``context=True``).
- What counts as validating that input: a framework that validates arguments (Celery
  ``pydantic=True`` for parameters annotated with a pydantic model, celery/app/base.py
  ``pydantic_wrapper``, Celery >= 5.5; Taskiq parses annotated parameters with pydantic,
  taskiq/receiver/params_parser.py, unless the worker runs ``--no-parse``), and calls and
  checks in the task's code (``model_validate``, marshmallow ``load``, ``jsonschema.validate``,
  ``TypeAdapter(...).validate_python``, Django ``is_valid``/``full_clean``, an ``isinstance``
  guard, a raise on a parameter check, ``Model(**payload)``).
- Broker and result-backend URLs: which literals carry credentials (``scheme://user:pass@``),
  which hosts are outside the cluster, and which Celery settings sign messages
  (celery/security, ``app.setup_security()``).

The task-body analysis reads the task's source with ``ast``: the per-file facts record which
names are subscripted, not with what key nor under which condition, and those decide
whether a read is a dictionary lookup and whether a check guards it.
"""

from __future__ import annotations

import ast
import ipaddress
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from qlint.lint.extract import dotted_name as _dotted
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Param, Value
from qlint.lint.model import App, Project, Task
from qlint.lint.source import SourceFile
from qlint.lint.trees import Trees

# ---------------------------------------------------------------------------------------
# Frameworks: who fills which parameter, who validates arguments
# ---------------------------------------------------------------------------------------

# Leading parameters a framework passes itself, by framework (arq: ``ctx``, a dict of the
# worker's state, arq/worker.py ``run_job``).
LEADING_CONTEXT = {"arq": 1}
# The method of a class-based task that receives the message's arguments.
ENTRY_METHODS = {"celery": "run", "dramatiq": "perform"}
# Task options that make the framework validate arguments against their annotations.
# Celery >= 5.5: ``@app.task(pydantic=True)`` validates parameters annotated with a pydantic
# model (celery/app/base.py ``_task_from_fun`` -> ``pydantic_wrapper``).
VALIDATING_OPTIONS = {"celery": "pydantic"}
PYDANTIC_MIN_VERSION = {"celery": "5.5"}
# Frameworks that parse every annotated parameter (except ``Any``) before the task runs.
PARSES_ANNOTATED = frozenset({"taskiq"})
# Remedy, by framework, for an unvalidated payload.
REMEDIES = {
    "celery": "annotate it with a pydantic model and set `pydantic=True` on the task, or validate it "
              "first (`Model.model_validate(...)`)",
    "taskiq": "annotate it with a pydantic model (Taskiq parses annotated parameters), or validate it "
              "first (`Model.model_validate(...)`)",
}
DEFAULT_REMEDY = "validate it first (`Model.model_validate(...)`, a marshmallow schema's `load`)"

PYDANTIC_BASES = frozenset({
    "pydantic.BaseModel", "pydantic.main.BaseModel", "pydantic.RootModel", "pydantic.root_model.RootModel",
})


def remedy(task: Task) -> str:
    return REMEDIES.get(task.profile.name if task.profile else "", DEFAULT_REMEDY)


def validating_option(task: Task) -> str | None:
    """The task option that makes the framework validate model-annotated arguments, if any."""
    return VALIDATING_OPTIONS.get(task.profile.name if task.profile else "")


def validates_arguments(task: Task) -> bool:
    """The framework validates this task's model-annotated arguments (Celery ``pydantic=True``)."""
    option = validating_option(task)
    if option is None:
        return False
    value = task.options.get(option)
    return value is not None and value.value is True


def option_unknown(task: Task, option: str) -> bool:
    """The option may be set where qlint cannot read it."""
    value = task.options.get(option)
    return task.options_hidden or value is not None and not value.known


def parses_annotated(task: Task) -> bool:
    return (task.profile.name if task.profile else "") in PARSES_ANNOTATED


def pydantic_min_version(task: Task) -> str | None:
    return PYDANTIC_MIN_VERSION.get(task.profile.name if task.profile else "")


def entry_function(task: Task) -> FunctionFact | None:
    """The function whose parameters are the message's arguments."""
    if task.function is not None:
        return task.function
    if task.cls is not None:
        method = ENTRY_METHODS.get(task.profile.name if task.profile else "")
        prefix = f"{task.cls.qualname}."
        for fn in task.file.functions:
            if fn.qualname == f"{prefix}{method}" and fn.class_name == task.cls.name:
                return fn
    return None


def message_params(task: Task, fn: FunctionFact) -> list[Param]:
    """The parameters the message fills: without ``self`` of a bound task or a method, a
    framework's context parameter, or Huey's ``task`` under ``context=True``."""
    params = list(fn.params)
    skip = 0
    if fn.class_name is not None or task.bound:
        skip = 1
    skip += LEADING_CONTEXT.get(task.profile.name if task.profile else "", 0)
    as_argument = task.options.get("as_argument")  # Huey ``context_task(obj, as_argument=True)``
    if as_argument is not None and as_argument.value is True and task.profile and task.profile.name == "huey":
        skip += 1
    positional = [p for p in params if p.kind == "positional"]
    dropped = {id(p) for p in positional[:skip]}
    params = [p for p in params if id(p) not in dropped]
    context = task.options.get("context")
    if context is not None and context.value is True and task.profile and task.profile.name == "huey":
        params = [p for p in params if p.name != "task"]
    return params


# ---------------------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------------------

_LOOSE = frozenset({"dict", "Dict", "Any", "Mapping", "MutableMapping", "object", "JSON", "Json", "JSONType"})


@lru_cache(maxsize=4096)
def _annotation_tree(annotation: str) -> ast.expr | None:
    text = annotation.strip()
    if not text:
        return None
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    return node


def _union_members(node: ast.expr) -> list[ast.expr]:
    """``Optional[X]``, ``Union[X, None]``, ``X | None``: the members other than None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    if isinstance(node, ast.Subscript):
        head = _dotted(node.value).rpartition(".")[2]
        if head in ("Optional", "Union"):
            inner = node.slice
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return [m for item in items for m in _union_members(item)]
    if isinstance(node, ast.Constant) and node.value is None:
        return []
    return [node]


def loose_annotation(annotation: str) -> bool:
    """No annotation, or one that says nothing of the shape: ``dict``, ``Dict[str, Any]``,
    ``Any``, ``Mapping``, their ``Optional`` forms."""
    if not annotation.strip():
        return True
    node = _annotation_tree(annotation)
    if node is None:
        return False
    members = _union_members(node)
    if not members:
        return False
    for member in members:
        base = member.value if isinstance(member, ast.Subscript) else member
        if _dotted(base).rpartition(".")[2] not in _LOOSE:
            return False
    return True


def unparsed_annotation(annotation: str) -> bool:
    """What a parsing framework (Taskiq) leaves as it came: no annotation, or ``Any``."""
    if not annotation.strip():
        return True
    node = _annotation_tree(annotation)
    return node is not None and all(_dotted(m).rpartition(".")[2] == "Any" for m in _union_members(node))



def pydantic_model(project: Project, facts: FileFacts, annotation: str) -> str | None:
    """The pydantic model (a project class whose bases reach ``pydantic.BaseModel``) that a
    parameter annotation names directly or inside ``Optional``/``X | None``, else None."""
    node = _annotation_tree(annotation)
    if node is None:
        return None
    for member in _union_members(node):
        dotted = _dotted(member)
        if not dotted:
            continue
        qualified = project.canonical(facts.qualify(dotted))
        if _reaches_pydantic(project, qualified, 0):
            return dotted
    return None


def _reaches_pydantic(project: Project, qualified: str, depth: int) -> bool:
    if qualified in PYDANTIC_BASES:
        return True
    if depth > 8:
        return False
    found = project.class_named(qualified)
    if found is None:
        return False
    where, cls = found
    for base in cls.bases:
        if base.kind == "name":
            qualified = project.canonical(base.qualified)
        else:  # ``RootModel[list[int]]``, ``GenericModel[T]``: the facts keep no name for a subscript
            head = _subscript_head(where, base)
            if not head:
                continue
            qualified = project.canonical(where.qualify(head))
        if _reaches_pydantic(project, qualified, depth + 1):
            return True
    return False


def _subscript_head(facts: FileFacts, value: Value) -> str:
    """``Name[...]``'s dotted head, read from the file's text."""
    try:
        stat = os.stat(facts.path)
    except OSError:
        return ""
    data = _file_bytes(facts.path, stat.st_mtime_ns, stat.st_size)
    text = data[value.span.start:value.span.end].decode("utf-8", "replace")
    m = re.match(r"\s*([A-Za-z_][\w.]*)\s*\[", text)
    return m.group(1) if m else ""


@lru_cache(maxsize=256)
def _file_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


# ---------------------------------------------------------------------------------------
# Task bodies: reads of a payload, and what validates it
# ---------------------------------------------------------------------------------------

# Calls that validate data, by the called function's or method's name.
VALIDATING_CALLS = frozenset({
    "model_validate", "model_validate_json", "model_validate_strings", "parse_obj", "parse_raw", "parse_obj_as",
    "validate", "validate_python", "validate_json", "validate_strings", "full_clean", "is_valid", "load", "loads",
    "TypeAdapter", "validate_call", "validate_arguments", "check_schema", "iter_errors", "from_dict", "structure",
})
# ``load``/``loads`` of these modules decode, they do not validate.
DECODERS = frozenset({"json", "simplejson", "orjson", "ujson", "yaml", "pickle", "marshal", "toml", "tomllib",
                      "tomli", "msgpack", "cbor2", "base64", "zlib", "dill", "cloudpickle"})
# Exceptions whose handler means the task deals with a payload of the wrong shape.
SHAPE_ERRORS = frozenset({"KeyError", "LookupError", "TypeError", "IndexError", "AttributeError"})


@dataclass
class BodyFacts:
    """What a task's code does with its message parameters."""

    # (parameter, how: "subscript" | "get" | "get-default", source text, byte offset)
    reads: list[tuple[str, str, str, int]] = field(default_factory=list)
    validation: str = ""  # how the task validates, for notes ("" when it does not)


def analyse_task(trees: Trees, src: SourceFile, candidates: list[str], functions: list[FunctionFact]) -> BodyFacts:
    """Reads by key of the ``candidates`` in the entry function, and any validation in ``functions``."""
    out = BodyFacts()
    nodes = [n for fn in functions if (n := trees.function(src, fn)) is not None]
    if not nodes:
        out.validation = "unknown"
        return out
    src_utf8 = src.utf8
    lines = src.line_starts
    entry = nodes[0]
    names = set(candidates)
    all_params = {a.arg for n in nodes for a in _all_args(n)}
    for node in nodes:
        reason = _validation(node, all_params)
        if reason:
            out.validation = reason
            return out
    for sub in _walk_body(entry):
        read = _read(sub)
        if read is not None and read[0] in names:
            offset = lines[sub.lineno - 1] + sub.col_offset
            # ``ast`` columns are UTF-8 byte offsets: slice the bytes (decoding the whole module
            # per read made a generated module with thousands of tasks quadratic).
            end = lines[sub.end_lineno - 1] + sub.end_col_offset
            text = src_utf8[offset:end].decode("utf-8", "replace") or read[0]
            out.reads.append((read[0], read[1], _short(text), offset))
    out.reads.sort(key=lambda r: r[3])
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _all_args(node) -> list[ast.arg]:
    a = node.args
    out = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    if a.vararg:
        out.append(a.vararg)
    if a.kwarg:
        out.append(a.kwarg)
    return out


def _walk_body(node):
    """Every node of a function's body, nested functions and lambdas included (they are the task's code)."""
    for stmt in node.body:
        yield from ast.walk(stmt)


def _is_key(node: ast.expr) -> bool:
    """A dictionary key: a string, or a constant's name (``KEY``, ``Fields.ID``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    name = _dotted(node).rpartition(".")[2]
    return bool(name) and name.isupper() and len(name) > 1


def _read(node: ast.AST) -> tuple[str, str] | None:
    """``p["key"]``, ``p.get("key")``, ``p.get("key", default)``: (the parameter, how), else None."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and isinstance(node.ctx, ast.Load):
        if _is_key(node.slice):
            return node.value.id, "subscript"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and \
            isinstance(node.func.value, ast.Name) and node.args and _is_key(node.args[0]):
        has_default = len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)
        return node.func.value.id, "get-default" if has_default else "get"
    return None


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _callee(node: ast.Call) -> str:
    return _dotted(node.func)


def _says_validate(name: str) -> bool:
    """``validate_payload``, ``_validate``, ``check_and_validate``; not ``invalidate_cache``."""
    low = name.lower()
    return low.lstrip("_").startswith("validat") or "_validat" in low


def _validation(node, params: set[str]) -> str:
    """How a function validates its input, or "" when it does not."""
    params = params - {"self", "cls"}
    for sub in _walk_body(node):
        if isinstance(sub, ast.Call):
            callee = _callee(sub)
            last = callee.rpartition(".")[2] if callee else (
                sub.func.attr if isinstance(sub.func, ast.Attribute) else "")
            head = callee.split(".")[0] if callee else ""
            if last in ("load", "loads") and head in DECODERS:
                continue
            if last in VALIDATING_CALLS or _says_validate(last) or last in ("clean", "full_clean"):
                return f"`{last}(...)`"
            if last in ("isinstance", "issubclass") and sub.args and _mentions(sub.args[0], params):
                return "an `isinstance` guard"
            if any(k.arg is None and _mentions(k.value, params) for k in sub.keywords) and last[:1].isupper():
                return f"`{last}(**...)`"
        elif isinstance(sub, ast.Compare) and isinstance(sub.left, ast.Constant) and isinstance(
                sub.left.value, str) and any(isinstance(op, (ast.In, ast.NotIn)) for op in sub.ops) and \
                any(isinstance(c, ast.Name) and c.id in params for c in sub.comparators):
            return "a key membership check"
        elif isinstance(sub, ast.If) and _mentions(sub.test, params) and any(
                isinstance(s, ast.Raise) for s in sub.body):
            return "a raise on a parameter check"
        elif isinstance(sub, ast.Assert) and _mentions(sub.test, params):
            return "an assertion on a parameter"
        elif isinstance(sub, ast.ExceptHandler) and sub.type is not None:
            caught = sub.type.elts if isinstance(sub.type, ast.Tuple) else [sub.type]
            for c in caught:
                name = _dotted(c).rpartition(".")[2]
                if name in SHAPE_ERRORS or name.endswith("ValidationError"):
                    return f"`except {name}`"
        elif isinstance(sub, ast.Match) and _mentions(sub.subject, params):
            return "a `match` on a parameter"
    return ""


# ---------------------------------------------------------------------------------------
# Broker URLs: credentials and hosts
# ---------------------------------------------------------------------------------------

# Broker and result-backend URL schemes (kombu transports, Celery backends, Taskiq/Dramatiq/
# Huey/RQ/arq connections). Database schemes count only where a broker or backend is named.
BROKER_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq", "redis", "rediss", "redis+socket", "sentinel",
                  "sentinels", "sqs", "kafka", "confluentkafka", "qpid", "nats", "tls", "zookeeper")
DATABASE_SCHEMES = ("postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "couchbase", "cassandra",
                    "elasticsearch", "arangodb", "couchdb", "dynamodb", "s3", "gs")
_SCHEME = r"(?P<scheme>[a-z][a-z0-9+.-]*)"
CREDENTIAL_URL = re.compile(_SCHEME + r"://(?P<user>[^:/@\s;,]*):(?P<password>[^@\s;,]+)@(?P<host>[^/:\s;,?]*)",
                            re.IGNORECASE)
# Passwords that are placeholders or local development defaults, not secrets.
PLACEHOLDER_PASSWORDS = frozenset({
    "pass", "passwd", "pwd", "password", "secret", "changeme", "changeit", "change_me", "changethis", "example",
    "guest", "test", "testing", "dummy", "foo", "bar", "xxx", "admin", "redis", "root", "postgres",
})
_TEMPLATE = re.compile(r"\$\{|\$[A-Za-z_]|%\(|\{[^}]*\}|<[^>]*>|^\*+$|^x+$|^\.\.\.$", re.IGNORECASE)
# Names of settings and variables that hold a broker or result-backend URL (upper-cased).
_BROKER_NAME = re.compile(r"BROKER|BACKEND|CELERY|REDIS|RABBIT|AMQP|QUEUE|HUEY|DRAMATIQ|TASKIQ|(^|_)RQ(_|$)|"
                          r"(^|_)ARQ(_|$)|(^|_)MQ(_|$)", re.IGNORECASE)
# Calls that open a broker or backend connection from a URL or a password.
CONNECTION_CALLS = frozenset({"Celery", "from_url", "from_dsn", "Connection", "BrokerConnection"})
CONNECTION_SUFFIXES = ("Broker", "Huey", "Backend", "Redis", "RedisCluster", "RedisSettings", "ConnectionPool",
                       "Sentinel")
# Keywords that carry a password in a connection class (redis-py, arq ``RedisSettings``, Huey,
# kombu ``Connection``).
PASSWORD_KEYWORDS = frozenset({"password"})
# Environment variable a fix reads a URL from, by Celery keyword or setting.
CELERY_ENV_NAMES = {
    "broker": "CELERY_BROKER_URL", "broker_url": "CELERY_BROKER_URL", "backend": "CELERY_RESULT_BACKEND",
    "result_backend": "CELERY_RESULT_BACKEND", "broker_read_url": "CELERY_BROKER_READ_URL",
    "broker_write_url": "CELERY_BROKER_WRITE_URL",
}


@dataclass
class Credential:
    scheme: str
    user: str
    host: str


def broker_name(name: str) -> bool:
    """A setting or variable named for a broker or backend (``CELERY_BROKER_URL``, ``REDIS_URL``, ``RQ_QUEUES``)."""
    return bool(_BROKER_NAME.search(name))


def placeholder_password(user: str, password: str) -> bool:
    low = password.lower()
    if _TEMPLATE.search(password) or low in PLACEHOLDER_PASSWORDS or low.endswith("password"):
        return True
    return bool(user) and password == user  # ``lemur:lemur``, ``guest:guest``: a development default


def credential(text: str, *, database_ok: bool) -> Credential | None:
    """The first ``scheme://user:password@host`` of a broker (or, when ``database_ok``, a
    backend database) in ``text`` whose password is not a placeholder."""
    for m in CREDENTIAL_URL.finditer(text):
        scheme = m.group("scheme").lower()
        base = scheme[3:] if scheme.startswith("db+") else scheme
        if scheme not in BROKER_SCHEMES and not (database_ok and (base in DATABASE_SCHEMES or
                                                                  scheme.startswith("db+"))):
            continue
        if m.start() > 0 and text[m.start() - 1] not in " ;,\t\n\"'":
            continue  # ``xredis://``: part of another word
        if placeholder_password(m.group("user"), m.group("password")):
            continue
        return Credential(scheme, m.group("user"), m.group("host"))
    return None


def opens_backend(opener: str) -> bool:
    """A connection call whose URL may be a result backend's database URL."""
    return opener == "Celery" or opener.endswith("Backend")


def literal_password(value: str) -> bool:
    return bool(value) and not placeholder_password("", value)


def connection_call(project: Project, call: CallFact) -> str | None:
    """The class or function name when ``call`` opens a broker or backend connection."""
    with project.parsed_only():
        target = project.canonical(call.qualified) if call.qualified else call.dotted
    last = target.rpartition(".")[2] or call.method
    if last in ("Connection", "BrokerConnection"):  # kombu's; ``ldap3.Connection`` is no broker
        return last if target.split(".")[0] in ("kombu", "celery") else None
    if last in CONNECTION_CALLS or call.method in ("from_url", "from_dsn"):
        return last
    if last.endswith(CONNECTION_SUFFIXES) and last[:1].isupper():
        return last
    return None


def env_name(setting: str, scheme: str = "") -> str:
    """The environment variable a fix reads a URL (or password) from."""
    if setting in CELERY_ENV_NAMES:
        return CELERY_ENV_NAMES[setting]
    if setting == "password":
        return "REDIS_PASSWORD" if scheme.startswith("redis") or not scheme else "BROKER_PASSWORD"
    if setting.isidentifier() and setting.upper() == setting:
        return setting
    if setting.startswith(("broker_", "result_")):
        return "CELERY_" + setting.upper()
    return "REDIS_URL" if scheme.startswith(("redis", "sentinel")) else "BROKER_URL"


def string_values(value: Value) -> list[Value]:
    """String literals inside a value: itself, a sequence's or mapping's items, a call's arguments."""
    out: list[Value] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if v.kind == "const" and isinstance(v.value, str):
            out.append(v)
        elif v.kind == "seq":
            stack.extend(v.elements)
        elif v.kind == "dict":
            stack.extend(val for _, val in v.items)
        elif v.kind == "binop":
            stack.extend(x for x in (v.left, v.right) if x is not None)
        elif v.kind == "call" and v.call is not None:
            stack.extend(v.call.args)
            stack.extend(kw.value for kw in v.call.kwargs.values())
    return sorted(out, key=lambda x: x.span.start)


# -- hosts (QLT508) -------------------------------------------------------------------------

INTERNAL_SUFFIXES = (".svc.cluster.local", ".cluster.local", ".svc", ".internal", ".local", ".localdomain",
                     ".lan", ".home.arpa", ".intranet", ".corp", ".private")
# Celery settings that turn on message signing (celery/app/defaults.py ``security``, and
# ``task_serializer="auth"`` set by ``setup_security``).
# Reserved names (RFC 2606/6761): placeholders such as ``change-me.invalid``, never a real broker.
PLACEHOLDER_SUFFIXES = (".localhost", ".invalid", ".test")
SIGNING_SETTINGS = ("security_key", "security_certificate", "security_cert_store")
SIGNING_SERIALIZER = "auth"
SIGNING_CALL = re.compile(rb"\bsetup_security\s*\(")


def broker_hosts(url: str) -> list[str]:
    """Host names of a broker URL (a ``;``-separated failover list too); "" for none."""
    hosts = []
    for part in re.split(r"[;,\s]+", url.strip()):
        if not part:
            continue
        try:
            split = urlsplit(part)
            host = split.hostname or ""
        except ValueError:
            continue
        hosts.append(host)
    return hosts


def outside_cluster(host: str) -> bool:
    """A public host name or address; short service names, ``localhost``, private addresses and
    cluster-local names are inside."""
    host = host.strip("[]").rstrip(".").lower()
    if not host or host == "localhost" or host.endswith(PLACEHOLDER_SUFFIXES):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            return False  # ``redis``, ``rabbitmq``: a service name
        return not host.endswith(INTERNAL_SUFFIXES)
    return address.is_global


def signs_messages(app: App, sources: dict) -> str | None:
    """How the app signs messages (a security setting, the ``auth`` serializer, ``setup_security()``)."""
    for key in SIGNING_SETTINGS:
        if key in app.settings:
            return f"`{key}`"
    serializer = app.settings.get("task_serializer")
    if serializer is not None and serializer.value == SIGNING_SERIALIZER:
        return "`task_serializer = \"auth\"`"
    for src in sources.values():
        if SIGNING_CALL.search(src.utf8):
            return "`setup_security()`"
    return None




# ---------------------------------------------------------------------------------------
# The framework version a project declares (for version-aware fixes)
# ---------------------------------------------------------------------------------------

_REQUIREMENT_FILES = ("requirements*.txt", "requirements*.in", "requirements/*.txt", "requirements/*.in",
                      "requirements/*.pip", "dependencies/*/*.txt", "dependencies/*.txt", "uv.lock", "poetry.lock",
                      "pdm.lock", "Pipfile.lock", "pyproject.toml", "setup.cfg")
_VERSION = r"(?P<version>\d+(?:\.\d+)*)"


@dataclass
class Declared:
    version: str  # "5.4.0"
    file: str  # where it is declared, relative to the root
    exact: bool  # a pin or a lock entry, not only a lower bound

    def below(self, minimum: str) -> bool:
        return _version_tuple(self.version) < _version_tuple(minimum)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in re.findall(r"\d+", text)[:3])
    return parts + (0,) * (3 - len(parts))


def declared_version(root, package: str) -> Declared | None:
    """The version of ``package`` the project at ``root`` pins or locks (a lock file first,
    then an ``==`` pin, then a ``>=`` lower bound), or None when it declares none."""
    from pathlib import Path

    root = Path(root)
    name = re.escape(package)
    found: list[tuple[int, Declared]] = []
    paths = sorted({p for pattern in _REQUIREMENT_FILES for p in root.glob(pattern) if p.is_file()})
    for path in paths[:40]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".lock" or path.name == "Pipfile.lock":
            m = re.search(r'(?:^|\n)\s*name\s*=\s*"' + name + r'"\s*\n\s*version\s*=\s*"' + _VERSION, text,
                          re.IGNORECASE) or re.search(r'"' + name + r'"\s*:\s*\{[^}]*?"version"\s*:\s*"==' + _VERSION,
                                                      text, re.IGNORECASE | re.DOTALL)
            if m:
                found.append((0, Declared(m.group("version"), rel, True)))
            continue
        spec = r"(?:^|[\s\"'])" + name + r"(?:\[[^\]]*\])?\s*"
        m = re.search(spec + r"===?\s*" + _VERSION, text, re.IGNORECASE | re.MULTILINE)
        if m:
            found.append((1, Declared(m.group("version"), rel, True)))
            continue
        m = re.search(spec + r"(?:>=|~=|\^|~)\s*" + _VERSION, text, re.IGNORECASE | re.MULTILINE)
        if m:
            found.append((2, Declared(m.group("version"), rel, False)))
    if not found:
        return None
    return min(found, key=lambda f: f[0])[1]

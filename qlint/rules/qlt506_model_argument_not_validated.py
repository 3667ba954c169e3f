from __future__ import annotations

from qlint.frameworks import validation
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import tasks_of
from qlint.rules._common import add_task_options


@register
class ModelArgumentNotValidated(Rule):
    """## What it does
    Checks Celery tasks with a parameter annotated with a pydantic model (a project class
    whose bases reach `pydantic.BaseModel`, directly or through `Optional[...]`/`X | None`)
    whose decorator does not set `pydantic=True`, and Taskiq workers started with `--no-parse`
    that run tasks taking such parameters.

    ## Why is this bad?
    Without `pydantic=True` Celery does nothing with the annotation. kombu's JSON encoder
    knows no pydantic model, so `task.delay(Order(...))` fails in the caller with
    `EncodeError`; callers that work around it with `order.model_dump()` hand the task a
    plain `dict`, on which `order.total` raises `AttributeError`, and nothing checks the
    message against the model. With `pydantic=True` (Celery 5.5 and later) Celery validates
    each argument annotated with a model into that model before the task runs, and turns a
    returned model back into a dictionary. Taskiq parses annotated parameters with pydantic by
    itself; `taskiq worker --no-parse` turns that off, and the same task then gets the
    decoded JSON instead of the model.

    ## Example
    ```python
    from celery import shared_task
    from pydantic import BaseModel

    class Order(BaseModel):
        id: int
        total: int

    @shared_task
    def charge(order: Order):
        bill(order.id, order.total)
    ```

    Use instead:
    ```python
    from celery import shared_task
    from pydantic import BaseModel

    class Order(BaseModel):
        id: int
        total: int

    @shared_task(pydantic=True)
    def charge(order: Order):
        bill(order.id, order.total)
    ```

    ## Per framework
    - **Celery**: function tasks (`@app.task`, `@shared_task`, project wrappers) with a
      model-annotated parameter and no `pydantic=True`: `@shared_task def f(o: Order)` →
      `@shared_task(pydantic=True)`. Class-based tasks are not reported: `pydantic=True` is
      an option of the decorator only. A task whose serializer is not JSON (pickle, or a
      serializer of the project's own that may know models) is not reported either.
    - **Taskiq**: `taskiq worker proj.broker:broker --no-parse` (taskiq/cli/worker/args.py: the
      receiver is built with `validate_params=False`, so receiver/params_parser.py never runs)
      while a task the worker runs takes a model-annotated parameter: reported on the flag,
      wherever the command is written (Kubernetes, compose, Procfiles, shell scripts). Without
      `--no-parse` nothing is reported: Taskiq parses the parameter. A developer's stack (a
      compose service running the mounted source, `--reload`) is not judged.

    ## Known problems
    Which tasks a Taskiq worker runs is read from the broker it names (`proj.broker:broker`):
    the tasks under that module's top package, or every Taskiq task of the project when the
    name matches none.

    ## Fix safety
    There is no fix for Taskiq's flag (the worker may run tasks that rely on raw values). For
    Celery, the fix adds `pydantic=True` to the task's decorator. It is unsafe: callers that send
    something the model rejects now fail in the worker with a validation error instead of
    running the task, and the task's return value, when annotated with a model, is stored
    as a dictionary. `pydantic=True` needs Celery 5.5 or later: when the project pins or
    locks an older Celery (requirements files, `pyproject.toml`, `uv.lock`, `poetry.lock`)
    the finding says so and no fix is offered.

    ## References
    - [Celery: Argument validation with Pydantic](https://docs.celeryq.dev/en/stable/userguide/tasks.html#argument-validation-with-pydantic)
    - [kombu: Serialization](https://docs.celeryq.dev/projects/kombu/en/stable/userguide/serialization.html)
    - [pydantic: Models](https://docs.pydantic.dev/latest/concepts/models/)
    """

    code = "QLT506"
    name = "model-argument-not-validated"
    summary = "Task parameter annotated with a pydantic model that the framework is not told to validate"
    severity = Severity.ERROR
    fix_availability = "Sometimes"
    frameworks = ("celery", "taskiq")

    VALID = [
        Valid("""
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int

@shared_task(pydantic=True)
def charge(order: Order):
    pass
""", note="pydantic=True"),
        Valid("""
from dataclasses import dataclass
from typing import TypedDict

from celery import shared_task

@dataclass
class Order:
    id: int

class Refund(TypedDict):
    id: int

@shared_task
def charge(order: Order, refund: Refund, count: int):
    pass
""", note="a dataclass and a TypedDict are not pydantic models"),
        Valid("""
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int

@shared_task(serializer="pickle")
def charge(order: Order):
    pass
""", note="pickled messages carry the model itself (QLT501 is about pickle)"),
        Valid("""
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int

@shared_task(**TASK_OPTIONS)
def charge(order: Order):
    pass
""", note="options qlint cannot read"),
        Valid("""
from celery import Celery, Task
from pydantic import BaseModel

app = Celery("proj")

class Order(BaseModel):
    id: int

class Charge(Task):
    def run(self, order: Order):
        pass
""", note="class-based task: pydantic=True is a decorator option"),
        Valid("""
from pydantic import BaseModel
from taskiq import InMemoryBroker

broker = InMemoryBroker()

class Order(BaseModel):
    id: int

@broker.task
async def charge(order: Order):
    pass
""", note="Taskiq parses annotated parameters itself"),
        Valid({
            "proj/__init__.py": "",
            "proj/broker.py": """
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://redis:6379/0")
""",
            "proj/tasks.py": """
from pydantic import BaseModel

from proj.broker import broker

class Order(BaseModel):
    id: int

@broker.task
async def charge(order: Order):
    pass

@broker.task
async def ping(payload: dict):
    pass
""",
            "deploy/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-taskiq
spec:
  template:
    spec:
      containers:
        - name: worker
          image: "registry.example.com/proj:1.4.2"
          args: ["taskiq", "worker", "proj.broker:broker", "proj.tasks", "--workers", "2"]
""",
            "docker-compose.yml": """
services:
  worker:
    build: .
    command: taskiq worker proj.broker:broker proj.tasks --no-parse --reload
""",
        }, note="Taskiq parses annotated parameters unless --no-parse; a developer's run with --reload"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int
    total: int

@shared_task
def charge(order: Order):
    pass
""", expect=8, fixed="""
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int
    total: int

@shared_task(pydantic=True)
def charge(order: Order):
    pass
""", message="EncodeError"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/schemas.py": """
import pydantic

class Base(pydantic.BaseModel):
    model_config = {"extra": "forbid"}

class Order(Base):
    id: int
""",
            "proj/tasks.py": """
from typing import Optional

from proj import schemas
from proj.celery import app

@app.task(
    bind=True,
    max_retries=3,
)
def charge(self, order: Optional[schemas.Order], note: str = ""):
    pass

@app.task
def refund(order: "schemas.Order | None"):
    pass
""",
        }, expect=[("proj/tasks.py", 6), ("proj/tasks.py", 13)], fixed={"proj/tasks.py": """
from typing import Optional

from proj import schemas
from proj.celery import app

@app.task(
    bind=True,
    max_retries=3,
    pydantic=True,
)
def charge(self, order: Optional[schemas.Order], note: str = ""):
    pass

@app.task(pydantic=True)
def refund(order: "schemas.Order | None"):
    pass
"""}, note="a model through a module and a base class, Optional, a string annotation, a bound task"),
        Invalid({
            "requirements.txt": """
celery[redis]==5.4.0
pydantic==2.9.2
""",
            "tasks.py": """
from celery import shared_task
from pydantic import BaseModel

class Order(BaseModel):
    id: int

@shared_task
def charge(order: Order):
    pass
""",
        }, expect=[("tasks.py", 7)], message="Celery 5.4.0 (requirements.txt)",
            note="the project pins a Celery without pydantic=True: no fix"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
task = functools.partial(shared_task, acks_late=True)
""",
            "proj/tasks.py": """
from pydantic import RootModel

from proj.celery import task

class Ids(RootModel[list[int]]):
    pass

@task(queue="slow")
def purge(ids: Ids):
    pass
""",
        }, expect=[("proj/tasks.py", 8)], fixed={"proj/tasks.py": """
from pydantic import RootModel

from proj.celery import task

class Ids(RootModel[list[int]]):
    pass

@task(queue="slow", pydantic=True)
def purge(ids: Ids):
    pass
"""}, note="a RootModel through a project wrapper"),
        Invalid({
            "proj/__init__.py": "",
            "proj/broker.py": """
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://redis:6379/0")
""",
            "proj/tasks.py": """
from pydantic import BaseModel

from proj.broker import broker

class Order(BaseModel):
    id: int
    total: int

@broker.task
async def charge(order: Order):
    pass
""",
            "deploy/worker.yaml": """
# Source: proj/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-taskiq
spec:
  template:
    spec:
      containers:
        - name: worker
          image: "registry.example.com/proj:1.4.2"
          args:
            - taskiq
            - worker
            - proj.broker:broker
            - proj.tasks
            - --no-parse
""",
        }, expect=[("deploy/worker.yaml", 17)], message="`charge` (proj/tasks.py:9) receives plain JSON values for "
                                                        "`order: Order`",
            note="Taskiq's worker told not to parse arguments, for a task that takes a model"),
    ]

    def check(self, ctx: RuleContext) -> None:
        self._workers_without_parsing(ctx)
        declared = None
        for task in ctx.project.tasks:
            option = validation.validating_option(task) if task.profile else None
            if option is None or task.decorator is None or task.function is None:
                continue
            if validation.validates_arguments(task) or validation.option_unknown(task, option):
                continue
            serializer = task.options.get("serializer")
            if serializer is not None and serializer.value != "json":
                continue  # pickle carries the model; a custom serializer may know it
            models = [(p.name, m) for p in validation.message_params(task, task.function)
                      if (m := validation.pydantic_model(ctx.project, task.file, p.annotation))]
            if not models:
                continue
            if declared is None:
                declared = validation.declared_version(ctx.settings.root, task.profile.name) or False
            self._report(ctx, task, option, models, declared or None)

    @staticmethod
    def _workers_without_parsing(ctx: RuleContext) -> None:
        """A worker started with the flag that turns off the framework's parsing of annotated
        parameters (Taskiq ``--no-parse``) whose tasks take pydantic models: reported on the flag."""
        project = ctx.project
        for worker in [*project.workers, *project.script_workers]:
            cli = worker.command.cli
            if cli is None or not cli.no_parse_flag or cli.no_parse_flag not in worker.command.flags or \
                    "worker" not in worker.command.roles or worker.development:
                continue
            taking = []
            for task in tasks_of(project, worker):
                fn = validation.entry_function(task)
                if fn is None:
                    continue
                models = [(p.name, m) for p in validation.message_params(task, fn)
                          if p.annotation and (m := validation.pydantic_model(project, task.file, p.annotation))]
                if models:
                    taking.append((task, fn, models))
            if not taking:
                continue
            task, fn, models = taking[0]
            param, model = models[0]
            row = ctx.source(task.file).location(task.anchor.start).row
            more = f" (and {len(taking) - 1} more task{'s' if len(taking) > 2 else ''})" if len(taking) > 1 else ""
            flag = worker.command.flags[cli.no_parse_flag]
            facts, span = worker.flag_site(cli.no_parse_flag)
            ctx.report(facts, span,
                       f"`{flag.token.text}` on `{worker.command.program}` in {worker.place}: the worker hands tasks "
                       f"the decoded message as it is, so `{fn.name}` ({ctx.display(task.file.path)}:{row}) receives "
                       f"plain JSON values for `{param}: {model}`{more} instead of `{model}` instances: attribute "
                       "access on them raises `AttributeError`, and nothing checks the message against the model; "
                       "drop the flag "
                       f"(annotated parameters are then parsed with pydantic), or call `{model}.model_validate(...)` "
                       "in the task")

    def _report(self, ctx: RuleContext, task: Task, option: str, models, declared) -> None:
        minimum = validation.pydantic_min_version(task) or ""
        param, model = models[0]
        more = f" (and {len(models) - 1} more)" if len(models) > 1 else ""
        title = task.profile.title
        fix = None
        if declared is not None and declared.exact and declared.below(minimum):
            tail = (f"the project pins {title} {declared.version} ({declared.file}), which has no `{option}=True` "
                    f"({title} >= {minimum}): upgrade, or call `{model}.model_validate(...)` in the task")
        else:
            edits = add_task_options(ctx, task, [(option, "True")])
            fix = ctx.fix(task.file, f"Add `{option}=True`", edits) if edits else None
            assumed = f"; the project declares {title} {declared.version}" if declared is not None else ""
            tail = (f"`{option}=True` ({title} >= {minimum}{assumed}) validates the argument into the model "
                    "before the task runs")
        message = (f"`{task.function.name}` takes `{param}: {model}`{more}, a pydantic model, without "
                   f"`{option}=True`: kombu's JSON encoder cannot send the model (`EncodeError` in the caller), and "
                   f"a caller that sends `.model_dump()` hands the task a plain `dict` nothing checks; {tail}")
        ctx.report(task.file, task.anchor, message, fix=fix, statement=task.header)

from __future__ import annotations

from typing import ClassVar

from qlint.frameworks import validation
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import App
from qlint.lint.prefilter import Seed
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import where

URL_SETTINGS = ("broker_url", "broker_read_url", "broker_write_url")


@register
class UnauthenticatedMessages(Rule):
    """## What it does
    Checks Celery apps whose broker URL (`broker_url`, `broker_read_url`,
    `broker_write_url`, wherever it is set) names a host outside the cluster, a public
    host name or address, while the app does not sign messages: none of the
    `security_key`, `security_certificate`, `security_cert_store` settings, no
    `task_serializer = "auth"`, and no `app.setup_security()` call in the project.

    Hosts inside the cluster are not reported: short service names (`redis`,
    `rabbitmq`), `localhost`, private and loopback addresses, and names under
    `.svc.cluster.local`, `.svc`, `.cluster.local`, `.internal`, `.local`. A broker URL read
    from the environment is not judged (its value is not in the code), nor an app whose
    configuration qlint cannot read in full.

    ## Why is this bad?
    A Celery worker runs any message it finds in its queues. The broker's password is the
    only gate, and a broker outside the cluster is reachable by more people and machines:
    every other application sharing it, anyone the password leaked to (a CI log, a laptop,
    a config file, QLT503), anyone who can reach a managed broker's public endpoint. With
    message signing the producers sign each message with a private key and the workers
    refuse messages without a valid signature from a trusted certificate, so a broker
    credential alone no longer lets anyone run tasks. Celery's security guide calls it out
    for exactly this case: "you should take care to make sure only trusted clients can
    send messages".

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="amqps://orders@b-1234.mq.eu-west-1.amazonaws.com:5671")
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj", broker="amqps://orders@b-1234.mq.eu-west-1.amazonaws.com:5671")
    app.conf.update(
        security_key="/etc/ssl/private/worker.key",
        security_certificate="/etc/ssl/certs/worker.pem",
        security_cert_store="/etc/ssl/certs/*.pem",
    )
    app.setup_security()
    ```

    ## Per framework
    - **Celery** only, the one framework here with built-in message signing:
      `Celery(broker="redis://mq.example.com:6379/0")` with no `security_*` settings and no
      `app.setup_security()`.

    ## Fix safety
    There is no fix: signing needs a key pair and certificates deployed to every producer
    and worker.

    ## References
    - [Celery: Message Signing](https://docs.celeryq.dev/en/stable/userguide/security.html#message-signing)
    - [Celery: Security settings](https://docs.celeryq.dev/en/stable/userguide/configuration.html#security)
    - [Celery: Broker settings](https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-settings)
    """

    code = "QLT508"
    name = "unauthenticated-messages"
    summary = "Celery broker outside the cluster and no message signing"
    severity = Severity.INFO
    opt_in = True
    frameworks = ("celery",)
    # A module that only calls ``app.setup_security()`` may spell no framework token.
    prefilter_seed: ClassVar[Seed] = Seed(rb"\bsetup_security\b", (b"setup_security",))

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://orders@rabbitmq:5672//")
worker = Celery("other", broker="redis://redis-master.queues.svc.cluster.local:6379/0")
local = Celery("dev", broker="redis://localhost:6379/0")
private = Celery("lan", broker="amqp://orders@10.0.3.17:5672//")
""", note="a service name, a cluster-local name, localhost, a private address"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqps://orders@b-1234.mq.eu-west-1.amazonaws.com:5671")
app.conf.security_key = "/etc/ssl/private/worker.key"
app.conf.security_certificate = "/etc/ssl/certs/worker.pem"
app.conf.security_cert_store = "/etc/ssl/certs/*.pem"
app.setup_security()
""", note="messages are signed"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="redis://queue.example.com:6379/0")
""",
            "proj/signing.py": """
from proj import celery

def init():
    celery.app.setup_security(allowed_serializers=["json"])
""",
        }, note="setup_security() called elsewhere in the project"),
        Valid("""
import os
from celery import Celery

app = Celery("proj", broker=os.environ.get("CELERY_BROKER_URL", "redis://queue.example.com:6379/0"))
""", note="the broker URL comes from the environment"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://queue.example.com:6379/0")
app.config_from_object(settings_module_name())
""", note="configuration qlint cannot read in full"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="amqps://orders@b-1234.mq.eu-west-1.amazonaws.com:5671")
""", expect=3, message="b-1234.mq.eu-west-1.amazonaws.com"),
        Invalid({
            "proj/__init__.py": "",
            "proj/settings.py": """
CELERY_BROKER_URL = "rediss://:token@queue.example.com:6380/0"
CELERY_TASK_SERIALIZER = "json"
""",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

app = Celery(
    "proj",
)
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
        }, expect=[("proj/celery.py", 6)], message="Django settings", note="the broker from Django settings"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.broker_url = ["amqp://orders@rabbitmq:5672//", "amqp://orders@52.58.14.10:5672//"]
""", expect=3, message="52.58.14.10", note="a failover list with a public address"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for app in ctx.project.apps:
            if not app.config_complete:
                continue
            public = self._public_hosts(app)
            if not public:
                continue
            if validation.signs_messages(app, ctx.sources) is not None:
                continue
            hosts, setting = public
            names = ", ".join(f"`{h}`" for h in hosts)
            message = (f"Celery app `{app.qualified}` talks to a broker outside the cluster ({names}, "
                       f"`{setting[0]}` from {where(setting[1])}) and does not sign its messages: anyone who "
                       "gets the broker's credentials can publish tasks its workers run; message signing "
                       "(`security_key`, `security_certificate`, `security_cert_store`, `app.setup_security()`) "
                       "makes workers refuse messages no trusted producer signed")
            ctx.report(app.file, app.call.span, message)

    def _public_hosts(self, app: App):
        for key in URL_SETTINGS:
            resolved = app.settings.get(key)
            if resolved is None or resolved.env is not None or not resolved.known:
                continue
            values = resolved.value if isinstance(resolved.value, (list, tuple)) else [resolved.value]
            hosts = [h for v in values if isinstance(v, str) for h in validation.broker_hosts(v)
                     if validation.outside_cluster(h)]
            if hosts:
                return list(dict.fromkeys(hosts)), (key, resolved)
        return None

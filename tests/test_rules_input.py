"""Security and input rules (QLT503, QLT505, QLT506, QLT508) and the framework knowledge
they share (qlint/frameworks/validation.py): credential URLs, hosts, annotations, declared
versions, the prefilter seeds, noqa on task headers and a realistic project."""

from __future__ import annotations

import pytest

from qlint.frameworks import validation
from qlint.lint import prefilter
from tests.helpers import findings, fix, write_project

# -- credential URLs -----------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("amqp://orders:9f3kq2x@rabbitmq:5672/orders", ("amqp", "orders", "rabbitmq")),
    ("redis://:Zq81xkP@cache:6379/0", ("redis", "", "cache")),
    ("rediss://default:Zq81xkP@cache.example.com:6380", ("rediss", "default", "cache.example.com")),
    ("amqp://a@h1//;amqp://app:Zq81xkP@h2//", ("amqp", "app", "h2")),  # a failover list
    ("sqs://AKIAEXAMPLE:wJalrXUtnFEMI@", ("sqs", "AKIAEXAMPLE", "")),
])
def test_credential_found(text, expected):
    found = validation.credential(text, database_ok=False)
    assert found is not None and (found.scheme, found.user, found.host) == expected


@pytest.mark.parametrize("text", [
    "amqp://guest:guest@localhost:5672//",  # the user name as password: a development default
    "redis://:password@localhost:6379",
    "redis://:redispassword@cache:6379",
    "amqp://${USER}:${PASS}@mq//",
    "amqp://user:%(pw)s@mq//",
    "redis://:{password}@cache",
    "redis://:<password>@cache",
    "redis://:***@cache",
    "redis://cache:6379/0",  # no password
    "redis://:@cache:6379/0",  # an empty one
    "https://user:token@example.com",  # not a broker
    "postgres://shop:9f3kq2x@db/shop",  # a database, outside a backend setting
    "myredis://user:Zq81xkP@cache",  # another scheme that merely ends like one
])
def test_credential_not_found(text):
    assert validation.credential(text, database_ok=False) is None


def test_database_schemes_only_for_backends():
    assert validation.credential("db+postgresql://u:Zq81xkP@db/x", database_ok=False) is None
    assert validation.credential("db+postgresql://u:Zq81xkP@db/x", database_ok=True).scheme == "db+postgresql"
    assert validation.credential("mongodb+srv://u:Zq81xkP@cluster0.x.net", database_ok=True) is not None


@pytest.mark.parametrize("name,expected", [
    ("CELERY_BROKER_URL", True), ("broker_url", True), ("CELERY_RESULT_BACKEND", True), ("REDIS_URL", True),
    ("RQ_QUEUES", True), ("HUEY", True), ("DRAMATIQ_BROKER", True), ("DATABASE_URL", False), ("CACHES", False),
    ("SENTRY_DSN", False), ("ARQ_REDIS", True), ("PRQ_X", False),
])
def test_broker_names(name, expected):
    assert validation.broker_name(name) is expected


def test_env_names():
    assert validation.env_name("broker") == "CELERY_BROKER_URL"
    assert validation.env_name("backend") == "CELERY_RESULT_BACKEND"
    assert validation.env_name("result_backend") == "CELERY_RESULT_BACKEND"
    assert validation.env_name("BROKER_URL") == "BROKER_URL"
    assert validation.env_name("broker_transport_url") == "CELERY_BROKER_TRANSPORT_URL"
    assert validation.env_name("url", "rediss") == "REDIS_URL"
    assert validation.env_name("url", "amqp") == "BROKER_URL"
    assert validation.env_name("password") == "REDIS_PASSWORD"


# -- hosts ---------------------------------------------------------------------------


@pytest.mark.parametrize("host,outside", [
    ("rabbitmq", False), ("localhost", False), ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.9", False),
    ("172.20.0.4", False), ("::1", False), ("redis.queues.svc.cluster.local", False), ("redis.queues.svc", False),
    ("metadata.google.internal", False), ("printer.local", False), ("change-me.invalid", False), ("", False),
    ("mq.example.com", True), ("b-1.mq.eu-west-1.amazonaws.com", True), ("52.58.14.10", True),
    ("redis.example.com.", True),
])
def test_outside_cluster(host, outside):
    assert validation.outside_cluster(host) is outside


def test_broker_hosts():
    assert validation.broker_hosts("amqp://u@h1:5672//;amqp://u@h2//") == ["h1", "h2"]
    assert validation.broker_hosts("redis://") == [""]
    assert validation.broker_hosts("memory://") == [""]


# -- annotations -----------------------------------------------------------------------


@pytest.mark.parametrize("annotation,loose", [
    ("", True), ("dict", True), ("Dict[str, Any]", True), ("dict[str, typing.Any]", True), ("Any", True),
    ("typing.Mapping[str, object]", True), ("Optional[dict]", True), ("dict | None", True), ("'dict'", True),
    ("int", False), ("str", False), ("Order", False), ("list[dict]", False), ("dict | Order", False),
    ("TypedPayload", False), ("None", False),
])
def test_loose_annotation(annotation, loose):
    assert validation.loose_annotation(annotation) is loose


@pytest.mark.parametrize("annotation,unparsed", [
    ("", True), ("Any", True), ("typing.Any", True), ("dict", False), ("Order", False), ("int | None", False),
])
def test_unparsed_annotation(annotation, unparsed):
    assert validation.unparsed_annotation(annotation) is unparsed


# -- declared versions ---------------------------------------------------------------------


def test_declared_version_prefers_lock_files(tmp_path):
    (tmp_path / "requirements.txt").write_text("celery[redis]>=5.2\n")
    assert validation.declared_version(tmp_path, "celery") == validation.Declared("5.2", "requirements.txt", False)
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("django==5.1\ncelery==5.4.0  # pinned\n")
    assert validation.declared_version(tmp_path, "celery").version == "5.4.0"
    (tmp_path / "uv.lock").write_text('[[package]]\nname = "celery"\nversion = "5.6.3"\n')
    declared = validation.declared_version(tmp_path, "celery")
    assert (declared.version, declared.file, declared.exact) == ("5.6.3", "uv.lock", True)
    assert not declared.below("5.5") and validation.Declared("5.4.0", "x", True).below("5.5")


def test_declared_version_absent_or_other_package(tmp_path):
    assert validation.declared_version(tmp_path, "celery") is None
    (tmp_path / "requirements.txt").write_text("django-celery-beat==2.7.0\ncelery-types==0.22\n")
    assert validation.declared_version(tmp_path, "celery") is None


# -- QLT503 --------------------------------------------------------------------------------


def _rows(root, code):
    return [(path, row) for path, row, c, _ in findings(root, [code]) if c == code]


def test_qlt503_credentials_outside_framework_files_are_seen(tmp_path):
    """A module no framework token reaches: the rule's seed parses it, with or without the prefilter."""
    write_project(tmp_path, {"config/connections.py": """
        REDIS_URL = "redis://:Zq81xkP@cache:6379/0"
        """})
    raw = (tmp_path / "config/connections.py").read_bytes()
    assert not prefilter.is_seed(raw)
    on = findings(tmp_path, ["QLT503"], use_prefilter=True)
    off = findings(tmp_path, ["QLT503"], use_prefilter=False)
    assert on == off and [(p, r) for p, r, _, _ in on] == [("config/connections.py", 1)]


def test_qlt503_fix_keeps_shebang_and_comments_first(tmp_path):
    write_project(tmp_path, {"celeryconfig.py": """
        #!/usr/bin/env python
        # -*- coding: utf-8 -*-
        broker_url = "amqp://app:Zq81xkP@rabbitmq:5672//"
        result_backend = "redis://:Zq81xkP@redis:6379/1"
        """})
    outcome = fix(tmp_path, ["QLT503"])
    (text,) = [s.text for s in outcome.fixed.values()]
    assert text == ('#!/usr/bin/env python\n# -*- coding: utf-8 -*-\nimport os\n\n'
                    'broker_url = os.environ["CELERY_BROKER_URL"]\n'
                    'result_backend = os.environ["CELERY_RESULT_BACKEND"]\n')


def test_qlt503_no_fix_when_os_is_another_name(tmp_path):
    write_project(tmp_path, {"settings.py": """
        import custom_os as os

        CELERY_BROKER_URL = "amqp://app:Zq81xkP@rabbitmq:5672//"
        """})
    assert _rows(tmp_path, "QLT503") == [("settings.py", 3)]
    assert fix(tmp_path, ["QLT503"]).fixed == {}


def test_qlt503_settings_class_and_conf_update(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": """
            from configurations import Configuration

            class Prod(Configuration):
                CELERY_BROKER_URL = "amqps://app:Zq81xkP@mq.example.com:5671//"
            """,
        "proj/celery.py": """
            from celery import Celery

            app = Celery("proj")
            app.conf.update(broker_url="redis://:Zq81xkP@redis:6379/0", task_acks_late=True)
            app.conf.update({"result_backend": "redis://:Zq81xkP@redis:6379/1"})
            """,
    })
    assert sorted(_rows(tmp_path, "QLT503")) == [("proj/celery.py", 4), ("proj/celery.py", 5),
                                                 ("proj/settings.py", 4)]


# -- QLT505 ----------------------------------------------------------------------------------

PROJECT = {
    "shop/__init__.py": "",
    "shop/celery.py": """
        from celery import Celery

        app = Celery("shop")
        """,
    "shop/schemas.py": """
        from pydantic import BaseModel

        class Receipt(BaseModel):
            email: str
        """,
    "shop/tasks.py": """
        import json

        from shop.celery import app
        from shop.schemas import Receipt


        @app.task(bind=True, max_retries=3)
        def send_receipt(self, payload: dict):
            send_mail(payload["email"], payload["total"])


        @app.task
        def send_validated(payload):
            receipt = Receipt.model_validate(payload)
            send_mail(receipt.email, payload["total"])


        @app.task
        def import_rows(raw: str):
            rows = json.loads(raw)
            return [row["sku"] for row in rows]


        @app.task
        def notify(user_id: int, context: dict):
            render("mail.txt", context)


        @app.task
        def relay(**options):
            if options.get("dry_run"):
                return
            publish(options["topic"])


        @app.task
        def forward(event):  # noqa: QLT505
            handle(event["kind"])
        """,
}


def test_qlt505_realistic_project(tmp_path):
    write_project(tmp_path, PROJECT)
    got = findings(tmp_path, ["QLT505"])
    assert [(p, r) for p, r, _, _ in got] == [("shop/tasks.py", 7), ("shop/tasks.py", 29)]
    first, second = (m for _, _, _, m in got)
    assert '`payload["email"]` (and 1 other read)' in first and "`pydantic=True`" in first
    assert "`**options`" in second and '`options["topic"]`' in second


def test_qlt505_noqa_on_the_def_line(tmp_path):
    write_project(tmp_path, {"tasks.py": """
        from celery import shared_task

        @shared_task
        def forward(event):  # noqa: QLT505
            handle(event["kind"])
        """})
    assert _rows(tmp_path, "QLT505") == []


def test_qlt505_validation_in_a_called_method_of_a_class_task(tmp_path):
    write_project(tmp_path, {"tasks.py": """
        from celery import Celery, Task

        app = Celery("proj")

        class Import(Task):
            def run(self, row):
                self.check(row)
                save(row["sku"])

            def check(self, row):
                if "sku" not in row:
                    raise ValueError("sku")
        """})
    assert _rows(tmp_path, "QLT505") == []


# -- QLT506 ----------------------------------------------------------------------------------


def test_qlt506_names_the_declared_version_and_fixes(tmp_path):
    write_project(tmp_path, {
        "uv.lock": """
            [[package]]
            name = "celery"
            version = "5.6.3"
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
    })
    (message,) = [m for _, _, c, m in findings(tmp_path, ["QLT506"]) if c == "QLT506"]
    assert "Celery >= 5.5; the project declares Celery 5.6.3" in message
    (text,) = [s.text for s in fix(tmp_path, ["QLT506"]).fixed.values()]
    assert "@shared_task(pydantic=True)\n" in text


def test_qlt506_wrapper_that_takes_no_options_gets_no_fix(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": """
            from celery import Celery

            app = Celery("proj")
            background = app.task(acks_late=True)
            """,
        "proj/tasks.py": """
            from pydantic import BaseModel

            from proj.celery import background

            class Order(BaseModel):
                id: int

            @background
            def charge(order: Order):
                pass
            """,
    })
    assert _rows(tmp_path, "QLT506") == [("proj/tasks.py", 8)]
    assert fix(tmp_path, ["QLT506"]).fixed == {}


# -- QLT508 ----------------------------------------------------------------------------------


def test_qlt508_setup_security_in_a_module_without_framework_tokens(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/worker.py": """
            from celery import Celery

            app = Celery("proj", broker="redis://queue.example.com:6379/0")
            """,
        "proj/boot.py": """
            from proj.worker import app as a

            def start():
                a.setup_security()
            """,
    })
    assert not prefilter.is_seed((tmp_path / "proj/boot.py").read_bytes())
    on = findings(tmp_path, ["QLT508"], use_prefilter=True)
    off = findings(tmp_path, ["QLT508"], use_prefilter=False)
    assert on == off == []
    (tmp_path / "proj/boot.py").unlink()
    assert [(p, r) for p, r, _, _ in findings(tmp_path, ["QLT508"])] == [("proj/worker.py", 3)]


def test_qlt503_passwords_of_other_clients_are_not_broker_credentials(tmp_path):
    write_project(tmp_path, {"clients.py": """
        import ldap3
        from pymongo import MongoClient
        from kombu import Connection

        directory = ldap3.Connection("ldap://dir", user="cn=app", password="Zq81xkP")
        mongo = MongoClient("mongodb://app:Zq81xkP@mongo:27017")
        api = ApiClient(password="Zq81xkP")
        broker = Connection("amqp://app:Zq81xkP@rabbitmq//", password="Zq81xkP")
        """})
    assert _rows(tmp_path, "QLT503") == [("clients.py", 8), ("clients.py", 8)]  # the URL and the password


def test_qlt505_invalidate_is_not_validation(tmp_path):
    write_project(tmp_path, {"tasks.py": """
        from celery import shared_task

        @shared_task
        def refresh(payload):
            invalidate_cache(payload["key"])

        @shared_task
        def checked(payload):
            _validate_payload(payload)
            store(payload["key"])
        """})
    assert _rows(tmp_path, "QLT505") == [("tasks.py", 3)]

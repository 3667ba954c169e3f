"""QLT609 judged by how often a beat entry runs (`expiry-interval`, a crontab's exact shortest
gap between two runs), and QLT604's batch remedy: what `group(...)` changes, and the loops it
cannot express (options computed per item, a queue per item, a producer or pipeline shared
already, scheduled RQ jobs)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from qlint.frameworks.celery_calls import CRON_FIELDS, crontab_gaps, expand_cronspec
from qlint.settings import ConfigError, parse_table
from tests.helpers import findings, fix, norm, write_project


def _fields(**spec) -> list[frozenset[int] | None]:
    return [expand_cronspec(spec.get(name, "*"), max_, min_) for name, max_, min_ in CRON_FIELDS]


def _brute_gaps(fields, start: date, years: int) -> set[int]:
    """Gaps in minutes between consecutive runs, by walking every day of ``years`` years."""
    minute, hour, dow, dom, moy = fields
    runs: list[datetime] = []
    day = datetime(start.year, start.month, start.day)
    end = datetime(start.year + years, 1, 1)
    while day < end:
        if day.month in moy and day.day in dom and day.isoweekday() % 7 in dow:
            runs += [day.replace(hour=h, minute=m) for h in sorted(hour) for m in sorted(minute)]
        day += timedelta(days=1)
    return {int((b - a).total_seconds()) // 60 for a, b in pairwise(runs)}


# -- QLT609: how often a crontab runs ------------------------------------------------------------

@pytest.mark.parametrize("spec,shortest,regular", [
    ({"minute": "*/5"}, 5, True),
    ({"minute": 0, "hour": 3}, 1440, True),
    ({"minute": 0, "hour": "*/2"}, 120, True),
    ({"minute": "0,30"}, 30, True),
    ({}, 1, True),
    ({"minute": 1}, 60, True),
    ({"minute": "*/7"}, 4, False),  # 0, 7, ... 56, then 0 of the next hour
    ({"minute": 0, "hour": "22-2"}, 60, False),  # a range that wraps past midnight
    ({"minute": 0, "hour": [0, 23]}, 60, False),  # 23:00 to 00:00 the next day
    ({"minute": "*/15", "hour": "2-5", "day_of_week": "sun"}, 15, False),
    ({"minute": 30, "hour": 0, "day_of_week": 0}, 7 * 1440, True),
    ({"minute": 0, "hour": 9, "day_of_week": "mon-fri"}, 1440, False),
    ({"minute": 0, "hour": 0, "day_of_month": 1}, 28 * 1440, False),  # February
    ({"minute": range(0, 60, 10)}, 10, True),
    ({"minute": "1-59/2"}, 2, True),
])
def test_crontab_shortest_gap(spec, shortest, regular):
    gaps = crontab_gaps(*_fields(**spec))
    assert gaps is not None and min(gaps) == shortest
    assert (len(gaps) == 1) is regular


def test_crontab_that_never_runs_or_that_celery_rejects():
    assert crontab_gaps(*_fields(minute=0, hour=0, day_of_month=31, month_of_year=2)) is None
    assert crontab_gaps(*_fields(minute=0, hour=0, day_of_month=30, month_of_year="2")) is None
    for bad in ("*/0", "60", "-1", "", "1,,2", "x", "*/"):
        assert expand_cronspec(bad, 60, 0) is None, bad
    assert expand_cronspec(1.5, 60, 0) is None and expand_cronspec(None, 60, 0) is None
    assert expand_cronspec("mon-fri", 7, 0) == frozenset({1, 2, 3, 4, 5})
    assert expand_cronspec("fri-mon", 7, 0) == frozenset({5, 6, 0, 1})  # wraps, as Celery's parser
    assert expand_cronspec("Sunday", 7, 0) == frozenset({0})
    assert expand_cronspec("*/3", 31, 1) == frozenset(range(1, 32, 3))


def test_crontab_gaps_match_a_walk_over_the_calendar():
    """The shortest gap computed from the 400-year cycle is the one a walk over real dates
    finds, for day-of-week, day-of-month and month restrictions combined."""
    rng = random.Random(7)

    def pick(max_: int, min_: int, star: float) -> object:
        roll = rng.random()
        if roll < star:
            return "*"
        if roll < star + 0.2:
            return rng.randrange(min_, max_ + min_)
        if roll < star + 0.4:
            return f"*/{rng.randint(2, max_)}"
        return ",".join(str(rng.randrange(min_, max_ + min_)) for _ in range(rng.randint(1, 3)))

    checked = 0
    for _ in range(60):
        spec = {"minute": pick(60, 0, 0.2), "hour": pick(24, 0, 0.3), "day_of_week": pick(7, 0, 0.5),
                "day_of_month": pick(31, 1, 0.7), "month_of_year": pick(12, 1, 0.8)}
        fields = _fields(**spec)
        walked = _brute_gaps(fields, date(2023, 1, 1), 6)
        computed = crontab_gaps(*fields)
        if not walked:
            continue
        checked += 1
        assert computed is not None and min(computed) == min(walked) and walked <= computed, spec
    assert checked > 30


# -- QLT609: which entries are reported ----------------------------------------------------------

BEAT = """
import os
from datetime import timedelta
from celery import Celery
from celery.schedules import crontab, schedule

app = Celery("proj")

@app.task
def sweep():
    pass

app.conf.beat_schedule = {
    "five": {"task": "tasks.sweep", "schedule": crontab(minute="*/5")},
    "half-hour": {"task": "tasks.sweep", "schedule": crontab(minute="0,30")},
    "hourly": {"task": "tasks.sweep", "schedule": crontab(minute=0)},
    "two-hours": {"task": "tasks.sweep", "schedule": crontab(minute=0, hour="*/2")},
    "daily": {"task": "tasks.sweep", "schedule": timedelta(days=1)},
    "interval": {"task": "tasks.sweep", "schedule": schedule(run_every=timedelta(minutes=2))},
    "slow-interval": {"task": "tasks.sweep", "schedule": schedule(3600)},
    "elsewhere": {"task": "billing.tasks.sweep", "schedule": 60},
}
"""

# Row of each entry in BEAT, by name.
ROWS = {"five": 13, "half-hour": 14, "hourly": 15, "two-hours": 16, "daily": 17, "interval": 18,
        "slow-interval": 19}


def _rows(tmp_path, files, **settings) -> dict[int, str]:
    write_project(tmp_path, files)
    return {row: msg for p, row, code, msg in findings(tmp_path, ["QLT609"], **settings) if code == "QLT609"}


def test_only_entries_more_frequent_than_the_expiry_interval(tmp_path):
    # several entries of one schedule: one finding, on the first, naming each with its interval
    got = _rows(tmp_path, {"tasks.py": BEAT})
    assert sorted(got) == [ROWS["five"]]
    msg = got[ROWS["five"]]
    assert msg.startswith("3 beat entries of this schedule run more often than every 3600 s")
    assert "`five` every 300 s" in msg and "`half-hour` every 1800 s" in msg and "`interval` every 120 s" in msg
    assert "hourly" not in msg and "daily" not in msg


def test_expiry_interval_setting_moves_the_threshold(tmp_path):
    two_hours = _rows(tmp_path, {"tasks.py": BEAT}, expiry_interval=7200)
    (msg,) = two_hours.values()
    assert msg.startswith("5 beat entries of this schedule")  # every two hours is not more often
    assert "and 2 more" in msg
    ten_minutes = _rows(tmp_path, {"tasks.py": BEAT}, expiry_interval=600)
    (msg,) = ten_minutes.values()
    assert msg.startswith("2 beat entries") and "`five`" in msg and "`interval`" in msg


def test_expiry_interval_is_read_from_configuration(tmp_path):
    settings = parse_table({"expiry-interval": 900}, tmp_path / "qlint.toml")
    assert settings.expiry_interval == 900
    assert parse_table({}, tmp_path / "qlint.toml").expiry_interval == 3600
    for bad in (0, -5, "1h", True):
        with pytest.raises(ConfigError, match="expiry-interval"):
            parse_table({"expiry-interval": bad}, tmp_path / "qlint.toml")


def test_irregular_crontab_is_named_by_its_shortest_gap_and_fixed_with_it(tmp_path):
    files = {"tasks.py": """
        from celery import Celery
        from celery.schedules import crontab

        app = Celery("proj")

        @app.task
        def unlock():
            pass

        app.conf.beat_schedule = {
            "unlock": {"task": "tasks.unlock", "schedule": crontab(minute="*/7"), "options": {"queue": "low"}},
        }
    """}
    got = _rows(tmp_path, files)
    assert list(got) == [11]
    assert "as often as every 240 s (the shortest gap between two of its crontab's runs)" in got[11]
    outcome = fix(tmp_path, ["QLT609"])
    (fixed,) = outcome.fixed.values()
    assert '"options": {"queue": "low", "expires": 240}' in fixed.text


def test_schedule_from_a_constant_in_another_module(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/schedules.py": """
            from celery.schedules import crontab

            EVERY_TEN_MINUTES = crontab(minute="*/10")
            NIGHTLY = crontab(minute=0, hour=2)
        """,
        "proj/celery.py": """
            from celery import Celery
            from proj.schedules import EVERY_TEN_MINUTES, NIGHTLY

            app = Celery("proj")

            @app.task
            def sweep():
                pass

            app.conf.beat_schedule = {
                "often": {"task": "proj.celery.sweep", "schedule": EVERY_TEN_MINUTES},
                "nightly": {"task": "proj.celery.sweep", "schedule": NIGHTLY},
            }
        """,
    }
    write_project(tmp_path, files)
    got = [(p, row, msg) for p, row, code, msg in findings(tmp_path, ["QLT609"]) if code == "QLT609"]
    assert [(p, row) for p, row, _ in got] == [("proj/celery.py", 11)]
    assert "every 600 s" in got[0][2]


def test_environment_default_is_reported_without_a_fix(tmp_path):
    files = {"tasks.py": """
        import os
        from celery import Celery
        from celery.schedules import crontab

        app = Celery("proj")

        @app.task
        def poll():
            pass

        app.conf.beat_schedule = {
            "poll": {"task": "tasks.poll", "schedule": crontab(minute=os.environ.get("POLL_MINUTES", "*/5"))},
            "poll-slowly": {"task": "tasks.poll", "schedule": int(os.environ.get("POLL_SLOW", 7200))},
        }
    """}
    got = _rows(tmp_path, files)
    assert list(got) == [12]
    assert "every 300 s by default (`POLL_MINUTES` can change it)" in got[12]
    assert "no longer than its interval" in got[12]
    assert fix(tmp_path, ["QLT609"]).fixed == {}


# -- QLT604: the message ------------------------------------------------------------------------

LOOP = """
from celery import Celery

app = Celery("proj")

@app.task
def send_digest(user_id):
    pass

def notify_all(users):
    for user in users:
        {call}
"""


def _loop_rows(tmp_path, call: str) -> list[tuple[int, str]]:
    write_project(tmp_path, {"tasks.py": LOOP.replace("{call}", call)})
    return [(row, msg) for p, row, code, msg in findings(tmp_path, ["QLT604"]) if code == "QLT604"]


def test_message_says_what_a_group_changes(tmp_path):
    ((row, msg),) = _loop_rows(tmp_path, "send_digest.delay(user.pk)")
    assert row == 11
    assert "publishes one message per item and takes a producer from the pool for each one" in msg
    assert "still publishes one message per task, but all of them through one producer" in msg
    assert "in one go" not in msg


# -- QLT604: options a group's one call cannot give each message ---------------------------------

@pytest.mark.parametrize("per_item,same_for_all", [
    ('send_digest.apply_async((user.pk,), queue=f"digest-{user.region}")',
     'send_digest.apply_async((user.pk,), queue="digest")'),
    ("send_digest.apply_async((user.pk,), routing_key=user.shard)",
     'send_digest.apply_async((user.pk,), routing_key="digest.eu")'),
    ("send_digest.apply_async(args=(user.pk,), MessageGroupId=str(user.pk))",
     'send_digest.apply_async(args=(user.pk,), MessageGroupId="digests")'),
    ("send_digest.apply_async((user.pk,), None, f'digest-{user.pk}')",
     "send_digest.apply_async((user.pk,), None, None)"),
    ('app.send_task("digest", (user.pk,), countdown=user.delay)',
     'app.send_task("digest", (user.pk,), countdown=5)'),
    ("send_digest.apply_async((user.pk,), **user.options)",
     "send_digest.apply_async((user.pk,), **app.options)"),
])
def test_options_computed_per_item_are_not_reported(tmp_path, per_item, same_for_all):
    assert _loop_rows(tmp_path, per_item) == []
    assert [row for row, _ in _loop_rows(tmp_path, same_for_all)] == [11]


def test_option_from_a_name_assigned_in_the_loop(tmp_path):
    code = """
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(users, region):
            for user in users:
                queue = region + "-digest"
                send_digest.apply_async((user.pk,), queue=queue)
            fallback = "digest"
            for user in users:
                send_digest.apply_async((user.pk,), queue=fallback)
            for region_users in users:
                for user in region_users:
                    send_digest.apply_async((user.pk,), queue=region_users.queue)
    """
    write_project(tmp_path, {"tasks.py": code})
    rows = sorted(row for _, row, c, _ in findings(tmp_path, ["QLT604"]) if c == "QLT604")
    # A name the loop body assigns changes per item; one assigned before the loop, or an outer
    # loop's variable (constant within the inner loop), does not.
    assert rows == [13, 16]


def test_producer_shared_already(tmp_path):
    code = """
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(users, app):
            with app.producer_or_acquire() as producer:
                for user in users:
                    send_digest.apply_async((user.pk,), producer=producer)
            for user in users:
                send_digest.apply_async((user.pk,))
    """
    write_project(tmp_path, {"tasks.py": code})
    assert [row for _, row, c, _ in findings(tmp_path, ["QLT604"]) if c == "QLT604"] == [12]


def test_result_kept_per_item(tmp_path):
    code = """
        from celery import shared_task

        @shared_task
        def sync_repositories(user_id):
            pass

        def sync_all(user_ids, links):
            for user_id in user_ids:
                result = sync_repositories.delay(user_id)
                links.append(result.id)
            for user_id in user_ids:
                links.append(sync_repositories.delay(user_id))
            return [sync_repositories.delay(user_id) for user_id in user_ids]
    """
    write_project(tmp_path, {"tasks.py": code})
    # Collected results are what a group's results give; a result used as it comes is not.
    assert [row for _, row, c, _ in findings(tmp_path, ["QLT604"]) if c == "QLT604"] == [12, 13]


def test_rq_queue_per_item_scheduled_jobs_and_pipelines(tmp_path):
    code = """
        from datetime import timedelta
        from redis import Redis
        from rq import Queue

        queue = Queue(connection=Redis())

        def notify_all(users):
            for user in users:
                Queue(user.region, connection=Redis()).enqueue(send_digest, user.pk)
            for user in users:
                Queue("digests", connection=Redis()).enqueue(send_digest, user.pk)
            for user in users:
                queue.enqueue_in(timedelta(minutes=5), send_digest, user.pk)
            for user in users:
                queue.enqueue_at(user.local_morning, send_digest, user.pk)
            with queue.connection.pipeline() as pipe:
                for user in users:
                    queue.enqueue(send_digest, user.pk, pipeline=pipe)
            for user in users:
                queue.enqueue(send_digest, user.pk, job_id=f"digest-{user.pk}")
    """
    write_project(tmp_path, {"tasks.py": code})
    got = [(row, msg) for _, row, c, msg in findings(tmp_path, ["QLT604"]) if c == "QLT604"]
    assert [row for row, _ in got] == [11, 20]
    assert all("in one Redis pipeline" in msg and "round trips to Redis" in msg for _, msg in got)


def test_loops_over_batches_already(tmp_path):
    code = """
        from celery import shared_task

        @shared_task
        def index_documents(ids):
            pass

        def reindex(search_model):
            for id_list in search_model.get_id_groups():
                index_documents.delay(id_list)
            for user_ids in search_model.pages():
                index_documents.delay(user_ids)
            for document_id in search_model.document_ids():
                index_documents.delay(document_id)
    """
    write_project(tmp_path, {"tasks.py": code})
    assert [row for _, row, c, _ in findings(tmp_path, ["QLT604"]) if c == "QLT604"] == [13]


# -- QLT604: the fix still produces correct code -------------------------------------------------

FIX_CASES = {
    "await in the iterable": ("""
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        async def notify_all(client):
            for user_id in await client.user_ids():
                send_digest.delay(user_id)
    """, None),
    "walrus in the arguments": ("""
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(users):
            for user in users:
                send_digest.delay(user.pk, (name := user.name))
    """, None),
    "celery's group imported in the function": ("""
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(user_ids):
            from celery import group
            for user_id in user_ids:
                send_digest.delay(user_id)
    """, """
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(user_ids):
            from celery import group
            group(send_digest.s(user_id) for user_id in user_ids).delay()
    """),
    "group is a parameter": ("""
        from celery import group, shared_task

        @shared_task
        def send_digest(user_id):
            pass

        def notify_all(user_ids, group):
            for user_id in user_ids:
                send_digest.delay(user_id, group.pk)
    """, None),
    "module level, a conditional iterable": ("""
        from celery import shared_task

        @shared_task
        def send_digest(user_id):
            pass

        for user_id in FIRST if READY else SECOND:
            send_digest.delay(user_id)
    """, """
        from celery import group, shared_task

        @shared_task
        def send_digest(user_id):
            pass

        group(send_digest.s(user_id) for user_id in (FIRST if READY else SECOND)).delay()
    """),
}


@pytest.mark.parametrize("case", list(FIX_CASES))
def test_fix_output(tmp_path, case):
    source, expected = FIX_CASES[case]
    write_project(tmp_path, {"tasks.py": source})
    assert [c for _, _, c, _ in findings(tmp_path, ["QLT604"])] == ["QLT604"]
    outcome = fix(tmp_path, ["QLT604"])
    if expected is None:
        assert outcome.fixed == {}
        return
    (text,) = [s.text for s in outcome.fixed.values()]
    assert text == norm(expected)
    compile(text, "tasks.py", "exec")
    assert Path(tmp_path / "tasks.py").read_text(encoding="utf-8") == norm(source)  # nothing written by fix()

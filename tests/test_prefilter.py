"""The prefilter must never change a result: findings are identical with it on and off, and so are
the errors of files that cannot be read (the grammar of a file it skips is not checked).

The projects here are built so that the facts a rule needs sit in files the byte-level
seed test skips: a constants module that never mentions Celery, a configuration module
reached only through a ``config_from_object`` string, a tasks module that only spells the
name of a project decorator wrapper.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import findings, make_linter, write_project
from qlint.lint import prefilter


def both(root: Path, codes=None):
    on = findings(root, codes, use_prefilter=True)
    off = findings(root, codes, use_prefilter=False)
    return on, off


def errors(root: Path, use_prefilter: bool) -> list[tuple[str, str]]:
    linter = make_linter(root, use_prefilter=use_prefilter)
    linter.lint()
    return sorted((Path(e.path).relative_to(root).as_posix(), e.message) for e in linter.errors)


REALISTIC = {
    "proj/__init__.py": """
        from .celery import app as celery_app

        __all__ = ("celery_app",)
        """,
    "proj/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

        app = Celery("proj")
        app.config_from_object("proj.celeryconfig")
        app.autodiscover_tasks()
        """,
    # No framework token at all: reached only through the config_from_object string.
    "proj/celeryconfig.py": """
        broker_url = "redis://localhost:6379/0"
        result_expires = 3600
        accept_content = ["json", "pickle"]
        worker_prefetch_multiplier = 1
        """,
    # No framework token: reached only because a task module imports it.
    "proj/limits.py": """
        LIMIT = None
        SOFT = 30
        RETRIES = None
        """,
    "proj/decorators.py": """
        import functools

        from celery import shared_task

        background = functools.partial(shared_task, bind=True)
        """,
    # Spells only the wrapper's name and the constants: no framework token.
    "proj/jobs.py": """
        from proj.decorators import background
        from proj.limits import LIMIT, RETRIES


        @background(time_limit=LIMIT, max_retries=RETRIES)
        def rebuild_index(self, shard):
            return shard


        @background
        def nightly_report(self):
            return None
        """,
    "proj/tasks.py": """
        from proj.celery import app
        from proj.limits import SOFT


        @app.task(soft_time_limit=SOFT)
        def resize(image_id):
            return image_id
        """,
    "proj/settings.py": """
        import os

        SECRET_KEY = os.environ.get("SECRET_KEY", "dev")
        INSTALLED_APPS = ["django.contrib.admin", "proj"]
        CELERY_TASK_SERIALIZER = "pickle"
        """,
    "proj/utils.py": """
        def chunks(items, size):
            for i in range(0, len(items), size):
                yield items[i:i + size]
        """,
    "scripts/manage.py": """
        import sys


        def main():
            print(sys.argv)


        if __name__ == "__main__":
            main()
        """,
    "docs/conf.py": """
        project = "proj"
        extensions = []
        """,
}


def test_realistic_project(tmp_path):
    write_project(tmp_path, REALISTIC)
    # the test is only meaningful if the skipped files really are skipped by the seed test
    for rel in ("proj/celeryconfig.py", "proj/limits.py", "proj/jobs.py", "proj/utils.py"):
        assert not prefilter.is_seed((tmp_path / rel).read_bytes()), rel
    on, off = both(tmp_path)
    assert on == off
    found = {(path, row, code) for path, row, code, _ in on}
    # facts from every non-seed file were used
    assert ("proj/celeryconfig.py", 3, "QLT501") in found
    assert ("proj/jobs.py", 5, "QLT101") in found  # time_limit=LIMIT, LIMIT = None in limits.py
    # the bare @background task (jobs.py:10) and tasks.py's resize have no limit from the app:
    # one finding on the app counts both, so both were found
    (app_level,) = [msg for path, row, code, msg in on if (path, row, code) == ("proj/celery.py", 7, "QLT101")]
    assert "2 of its 3 tasks" in app_level
    assert errors(tmp_path, True) == errors(tmp_path, False) == []


def test_django_settings_project(tmp_path):
    files = dict(REALISTIC)
    files["proj/celery.py"] = """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
        """
    files["proj/settings.py"] = """
        from proj.limits import SOFT

        INSTALLED_APPS = ["proj"]
        CELERY_ACCEPT_CONTENT = ["pickle"]
        CELERY_TASK_SOFT_TIME_LIMIT = SOFT
        """
    write_project(tmp_path, files)
    on, off = both(tmp_path)
    assert on == off
    assert ("proj/settings.py", 4, "QLT501") in {(p, r, c) for p, r, c, _ in on}


def test_unreadable_files_are_errors_either_way(tmp_path):
    """Binary and undecodable files are reported whatever the prefilter says; a syntax error is
    reported in every file that may hold task code (``broken_tasks.py``), not in a file the
    prefilter skips (``broken_util.py``): its grammar is not checked, at no cost in findings."""
    files = dict(REALISTIC)
    files["proj/broken_util.py"] = "def helper(:\n    return 1\n"
    files["proj/broken_tasks.py"] = "from celery import shared_task\n\n@shared_task\ndef f(:\n    pass\n"
    write_project(tmp_path, files)
    (tmp_path / "proj/blob.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "proj/legacy.py").write_bytes(b"name = 'caf\xe9'\n")
    on, off = both(tmp_path)
    assert on == off
    with_prefilter = errors(tmp_path, True)
    without = errors(tmp_path, False)
    assert [p for p, _ in with_prefilter] == ["proj/blob.py", "proj/broken_tasks.py", "proj/legacy.py"]
    assert [p for p, _ in without] == ["proj/blob.py", "proj/broken_tasks.py", "proj/broken_util.py",
                                       "proj/legacy.py"]
    assert set(with_prefilter) < set(without)


# -- the same, with the modules shuffled --------------------------------------------------------------

IDENT = st.sampled_from


@st.composite
def projects(draw):
    """A Celery project where which modules exist, their names and their contents vary."""
    pkg = draw(IDENT(["proj", "backend", "svc"]))
    has_init = draw(st.booleans())
    app_mod = draw(IDENT(["celery", "worker", "app_factory"]))
    app_var = draw(IDENT(["app", "celery_app", "queue"]))
    config = draw(IDENT(["object", "object_cls", "django", "update", "none"]))
    cfg_mod = draw(IDENT(["celeryconfig", "config_prod", "broker_cfg"]))
    limits_mod = draw(st.none() | IDENT(["limits", "consts", "numbers"]))
    limit_value = draw(IDENT(["None", "120", "60 * 5", "0"]))
    wrapper = draw(st.none() | st.tuples(IDENT(["decorators", "wrappers", "util"]),
                                         IDENT(["background", "job", "work"]),
                                         IDENT(["partial_shared", "partial_app", "factory"])))
    jobs_mod = draw(IDENT(["jobs", "handlers", "work_items"]))
    settings_layout = draw(IDENT(["module", "package", "absent"]))
    pickle_in = draw(IDENT(["config", "settings", "nowhere"]))
    retries = draw(IDENT(["None", "3"]))
    extra_unrelated = draw(st.integers(0, 3))

    files: dict[str, str] = {}
    if has_init:
        files[f"{pkg}/__init__.py"] = ""
    limit_ref = limit_value
    limit_import = ""
    if limits_mod is not None:
        files[f"{pkg}/{limits_mod}.py"] = f"LIMIT = {limit_value}\nRETRIES = {retries}\nSOFT = 30\n"
        limit_import = f"from {pkg}.{limits_mod} import LIMIT, RETRIES\n"
        limit_ref = "LIMIT"
        retries_ref = "RETRIES"
    else:
        retries_ref = retries

    accept = '["json", "pickle"]' if pickle_in == "config" else '["json"]'
    app_lines = ["from celery import Celery", "", f'{app_var} = Celery("{pkg}")']
    if config == "object":
        app_lines.append(f'{app_var}.config_from_object("{pkg}.{cfg_mod}")')
        files[f"{pkg}/{cfg_mod}.py"] = f'broker_url = "redis://"\naccept_content = {accept}\n'
    elif config == "object_cls":
        app_lines.append(f'{app_var}.config_from_object("{pkg}.{cfg_mod}:Config")')
        files[f"{pkg}/{cfg_mod}.py"] = f'class Config:\n    broker_url = "redis://"\n    accept_content = {accept}\n'
    elif config == "django":
        app_lines.append(f'{app_var}.config_from_object("django.conf:settings", namespace="CELERY")')
    elif config == "update":
        app_lines.append(f"{app_var}.conf.update(accept_content={accept})")
    files[f"{pkg}/{app_mod}.py"] = "\n".join(app_lines) + "\n"

    settings_text = f'INSTALLED_APPS = ["{pkg}"]\n'
    if pickle_in == "settings":
        settings_text += 'CELERY_ACCEPT_CONTENT = ["pickle"]\n'
    if limits_mod is not None:
        settings_text = f"from {pkg}.{limits_mod} import SOFT\n" + settings_text + "CELERY_TASK_SOFT_TIME_LIMIT = SOFT\n"
    if settings_layout == "module":
        files[f"{pkg}/settings.py"] = settings_text
    elif settings_layout == "package":
        files[f"{pkg}/settings/__init__.py"] = f"from {pkg}.settings.base import *  # noqa\n"
        files[f"{pkg}/settings/base.py"] = settings_text

    if wrapper is not None:
        wmod, wname, kind = wrapper
        if kind == "partial_shared":
            wtext = f"import functools\n\nfrom celery import shared_task\n\n{wname} = functools.partial(shared_task, bind=True)\n"
        elif kind == "partial_app":
            wtext = (f"import functools\n\nfrom {pkg}.{app_mod} import {app_var}\n\n"
                     f"{wname} = functools.partial({app_var}.task, bind=True)\n")
        else:
            wtext = (f"from celery import shared_task\n\n\ndef {wname}(**options):\n"
                     f"    options.setdefault(\"bind\", True)\n    return shared_task(**options)\n")
        files[f"{pkg}/{wmod}.py"] = wtext
        deco_import = f"from {pkg}.{wmod} import {wname}\n"
        bare = f"@{wname}" if kind != "factory" else f"@{wname}()"
        called = f"@{wname}(time_limit={limit_ref}, max_retries={retries_ref})"
        params = "self, item"
    else:
        deco_import = f"from {pkg}.{app_mod} import {app_var}\n"
        bare = f"@{app_var}.task"
        called = f"@{app_var}.task(time_limit={limit_ref}, max_retries={retries_ref})"
        params = "item"
    files[f"{pkg}/{jobs_mod}.py"] = (
        deco_import + limit_import + "\n\n"
        f"{called}\ndef rebuild({params}):\n    return item\n\n\n"
        f"{bare}\ndef refresh({params}):\n    return item\n"
    )
    for i in range(extra_unrelated):
        files[f"{pkg}/helpers_{i}.py"] = f"def helper_{i}(x):\n    return x * {i}\n"
    return files


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_prefilter_never_changes_findings(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        on, off = both(root)
        assert on == off, files
        assert errors(root, True) == errors(root, False) == []


def test_seed_hints_are_spelled_by_their_patterns():
    """A seed's hints gate its pattern: each alternative of the pattern must contain one of them,
    or a file the pattern matches could be skipped. Checked on the patterns' own alternatives."""
    from qlint.lint import prefilter
    from qlint.lint.registry import all_rules

    seeds = [prefilter.FRAMEWORK_TOKENS, *(r.prefilter_seed for r in all_rules()
                                            if getattr(r, "prefilter_seed", None) is not None)]
    assert len(seeds) >= 5
    for seed in seeds:
        assert isinstance(seed, prefilter.Seed)
        source = seed.pattern.pattern.lower() if seed.fold else seed.pattern.pattern
        for alternative in source.split(b"|"):
            spelled = alternative.replace(b"\\b", b"").replace(b"\\", b"")
            assert any(hint in spelled for hint in seed.hints), (seed.pattern.pattern, alternative)
        assert not seed.fold or all(h == h.lower() for h in seed.hints)


def test_seed_decides_as_its_pattern_alone():
    from qlint.lint import prefilter

    samples = [b"from celery import shared_task", b"x = 1", b"class X(Actor):", b"import rq", b"arquivo = 1",
               b"BROKER = 'redis://u:p@h'", b"PASSWORD = 'x'", b"# NOQA: qlt101", b"import raven", b"ravenous"]
    from qlint.lint.registry import all_rules

    for seed in [prefilter.FRAMEWORK_TOKENS, *(r.prefilter_seed for r in all_rules()
                                            if getattr(r, "prefilter_seed", None) is not None)]:
        for sample in samples:
            assert (seed.search(sample) is None) == (seed.pattern.search(sample) is None), (seed.pattern, sample)


from hypothesis import given as _given, settings as _settings, strategies as _st  # noqa: E402

_PIECES = [b"task", b"Task", b"_task", b"tasks", b"shared_task", b"multitask", b"celery", b"CELERY", b".conf.",
           b".conf[", b".confx", b"config_from_object", b"retry", b"rq", b"arq", b"django_rq", b"rquery", b"enqueue",
           b"actor", b"Actor", b"reactor", b"Actors", b"huey", b"taskiq", b"WorkerSettings", b"Broker", b"Brokers",
           b"apply_async", b" ", b"\n", b"_", b"x", b"1", b".", b"(", b"#", b"\xc3\xa9"]


@_settings(max_examples=300, deadline=None)
@_given(_st.lists(_st.sampled_from(_PIECES), max_size=40), _st.integers(0, 60))
def test_windowed_framework_seed_decides_as_its_pattern(pieces, filler):
    """The framework seed tries its pattern only around hints; on any text (hints glued to word
    characters, at the edges, far apart) it must decide as one search over the whole text."""
    from qlint.lint import prefilter

    raw = b"".join(pieces[: len(pieces) // 2]) + b"y" * filler + b"".join(pieces[len(pieces) // 2:])
    seed = prefilter.FRAMEWORK_TOKENS
    assert (seed.search(raw) is None) == (seed.pattern.search(raw) is None), raw


@_settings(max_examples=200, deadline=None)
@_given(_st.lists(_st.sampled_from([b"app", b"celery_app", b"happy", b"app_", b"_app", b"apps", b" ", b".", b"\n",
                                    b"(", b"x", b"my_app"]), max_size=30),
        _st.sets(_st.sampled_from(["app", "celery_app", "my_app", "pp"]), min_size=1))
def test_closure_names_search_decides_as_its_pattern(pieces, names):
    from qlint.lint import prefilter

    raw = b"".join(pieces)
    seed = prefilter.names_pattern(set(names))
    assert (seed.search(raw) is None) == (seed.pattern.search(raw) is None), (raw, names)


# -- the call seed: a file that may call a task by name --------------------------------------------

import re as _re  # noqa: E402

_FULL_CALL = _re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)[ \t]{0,8}\.[ \t]{0,8}(?:"
                         + b"|".join(m.encode() for m in prefilter.CallSeed.METHODS) + rb")[ \t]{0,8}\(")


def _reference_call(names: set[bytes], raw: bytes) -> bytes | None:
    """What the seed must decide: the full pattern's leftmost matches, the first whose name is in the set."""
    for match in _FULL_CALL.finditer(raw):
        if match.group(1) in names:
            return match.group(1)
    return None


_CALL_PIECES = ["charge", "refund", "9charge", "x_charge", ".", " ", "\t", "        ", "(", ")", "\n", "delay", "s",
                "si", "send", "apply_async", "kiq", "a", "_", "# ", "'", "é", "obj.charge", "self.", "map"]


@_settings(max_examples=400, deadline=None)
@_given(_st.lists(_st.sampled_from(_CALL_PIECES), max_size=30))
def test_call_seed_decides_as_the_full_pattern(pieces):
    raw = "".join(pieces).encode("utf-8")
    seed = prefilter.calls_pattern({"charge", "refund"})
    assert seed.search(raw) == _reference_call(seed.names, raw)


def test_call_seed_examples():
    seed = prefilter.calls_pattern({"charge"})
    assert seed.search(b"charge.delay(1)") == b"charge"
    assert seed.search(b"tasks.charge .  apply_async (args)") == b"charge"
    assert seed.search(b"9charge.delay(") == b"charge"  # an identifier cannot start with a digit
    assert seed.search(b"recharge.delay(1)") is None and seed.search(b"charge.delayed(1)") is None
    assert seed.search(b"charge" + b" " * 9 + b".delay(") is None  # at most 8 spaces, as the pattern says

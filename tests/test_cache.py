"""The fact cache: warm runs re-parse nothing, a changed file is the only one re-parsed, the
results are those of a cold run, and a cache file written by someone else runs no code."""

from __future__ import annotations

import pickle
from pathlib import Path

from helpers import write_project
from qlint.lint import cache as cache_module
from qlint.lint.cache import CACHE_DIR, FactCache
from qlint.lint.engine import Linter
from qlint.lint.registry import select_rules
from qlint.settings import Settings

PROJECT = {
    "proj/__init__.py": "",
    "proj/celery.py": """
        from celery import Celery

        app = Celery("proj")
        app.conf.task_time_limit = 300
        """,
    "proj/tasks.py": """
        from proj.celery import app

        @app.task(autoretry_for=(Exception,))
        def charge(order_id):
            return order_id
        """,
    "proj/views.py": """
        from proj.tasks import charge

        def checkout(request):
            charge.delay(request.order)
        """,
    "proj/util.py": "def helper():\n    return 1\n",
}


def _run(root: Path, use_cache: bool = True) -> tuple[Linter, list]:
    linter = Linter(Settings(root=root), select_rules(None), cache=FactCache(root) if use_cache else None)
    linter.load(sorted(root.rglob("*.py")))
    diagnostics = linter.lint()
    return linter, [(d.path.name, d.location.row, d.code, d.message) for d in diagnostics]


def _parsed(linter: Linter) -> int:
    return len(linter.facts) - linter.from_cache


def test_warm_run_parses_nothing_and_finds_the_same(tmp_path):
    write_project(tmp_path, PROJECT)
    cold, cold_found = _run(tmp_path)
    assert _parsed(cold) >= 3 and cold.from_cache == 0
    assert (tmp_path / CACHE_DIR / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (tmp_path / CACHE_DIR / ".gitignore").read_text() == "*\n"
    warm, warm_found = _run(tmp_path)
    assert _parsed(warm) == 0 and warm.from_cache == len(warm.facts)
    assert warm_found == cold_found == _run(tmp_path, use_cache=False)[1]
    assert cold_found  # the project has findings to compare


def test_one_changed_file_is_the_only_one_parsed(tmp_path):
    write_project(tmp_path, PROJECT)
    _run(tmp_path)
    tasks = tmp_path / "proj/tasks.py"
    tasks.write_text(tasks.read_text().replace("autoretry_for=(Exception,)", "time_limit=60"), encoding="utf-8")
    warm, found = _run(tmp_path)
    assert _parsed(warm) == 1
    assert found == _run(tmp_path, use_cache=False)[1]
    assert not any(code == "QLT203" for _, _, code, _ in found)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


def test_a_planted_cache_entry_runs_no_code(tmp_path, monkeypatch):
    write_project(tmp_path, PROJECT)
    _, expected = _run(tmp_path)
    monkeypatch.chdir(tmp_path)
    planted = 0
    for path in (tmp_path / CACHE_DIR).rglob("*.pickle"):
        path.write_bytes(pickle.dumps(_Boom()))
        planted += 1
    assert planted >= 3
    linter, found = _run(tmp_path)
    assert not (tmp_path / "PWNED").exists()
    assert found == expected  # the planted entries were dropped and the files parsed again
    assert linter.from_cache == 0


def test_unreadable_entries_are_dropped_not_fatal(tmp_path):
    write_project(tmp_path, PROJECT)
    _, expected = _run(tmp_path)
    for index, path in enumerate(sorted((tmp_path / CACHE_DIR).rglob("*.pickle"))):
        path.write_bytes([b"", b"\x80\x05garbage", b"not a pickle at all"][index % 3])
    assert _run(tmp_path)[1] == expected


def test_only_fact_classes_are_named():
    facts = cache_module.facts_module.FileFacts(path="p.py", module="p")
    facts.star_imports.append("x")
    assert cache_module._decode(cache_module._encode(facts)) == facts
    for hostile in (pickle.dumps(print), pickle.dumps(Path("x")), pickle.dumps(_Boom())):
        try:
            cache_module._decode(hostile)
        except pickle.UnpicklingError as exc:
            assert "not a fact class" in str(exc)
        else:
            raise AssertionError("a global outside the fact classes was accepted")


def test_cached_verdict_holds_for_another_rule_selection(tmp_path):
    """A file only a rule's own seed makes worth parsing (a noqa naming a QLT code, for QLT001):
    skipped by a run without that rule, parsed by a later run with it, from the same cache."""
    write_project(tmp_path, {**PROJECT, "proj/util.py": "TIMEOUT = 30  # noqa: QLT101\n"})
    util = str(tmp_path / "proj/util.py")

    def run(codes):
        linter = Linter(Settings(root=tmp_path), select_rules(codes, (), ()), cache=FactCache(tmp_path))
        linter.load(sorted(tmp_path.rglob("*.py")))
        return linter, [(d.path.name, d.code) for d in linter.lint()]

    without, _ = run(["QLT101"])
    assert util not in without.sources
    with_rule, found = run(["QLT001", "QLT101"])
    assert util in with_rule.sources
    assert ("util.py", "QLT001") in found
    again, _ = run(["QLT101"])
    assert util not in again.sources


def test_a_skipped_file_that_changes_is_read_again(tmp_path, monkeypatch):
    """Unchanged size and time: a skipped file is not even read; any change to either and it is,
    and the prefilter judges the new bytes (here: it now defines a task, same length or not)."""
    import builtins

    from qlint.lint import engine

    write_project(tmp_path, PROJECT)
    util = tmp_path / "proj/util.py"
    first, _ = _run(tmp_path)
    assert str(util) not in first.sources
    opened: list[str] = []

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(engine, "open", recording_open, raising=False)
    second, _ = _run(tmp_path)
    assert str(util) not in second.sources and str(util) in second._keys
    assert str(util) not in opened and str(tmp_path / "proj/tasks.py") in opened
    monkeypatch.undo()
    util.write_text("from proj.celery import app\n\n@app.task\ndef helper():\n    return 1\n", encoding="utf-8")
    third, found = _run(tmp_path)
    assert str(util) in third.sources
    assert [fn.name for fn in third.facts[str(util)].functions] == ["helper"]
    assert found == _run(tmp_path, use_cache=False)[1]


def test_closure_answers_are_cached_per_file_version(tmp_path):
    """A module that never mentions Celery but spells a project's task decorator wrapper is parsed
    by the closure, from the cache's answer on a warm run; changed to spell none, it is not."""
    files = dict(PROJECT)
    files["proj/decorators.py"] = ("import functools\n\nfrom celery import shared_task\n\n"
                                   "background = functools.partial(shared_task, bind=True)\n")
    files["proj/jobs.py"] = "from proj.decorators import background\n\n\n@background\ndef later(self):\n    return 1\n"
    write_project(tmp_path, files)
    from qlint.lint import prefilter

    assert not prefilter.is_seed((tmp_path / "proj/jobs.py").read_bytes())  # only the closure reaches it
    cold, cold_found = _run(tmp_path)
    jobs = str(tmp_path / "proj/jobs.py")
    warm, warm_found = _run(tmp_path)
    assert jobs in cold.sources and jobs in warm.sources  # reached by the closure both times
    assert warm.from_cache == len(warm.facts)
    entry = FactCache(tmp_path)._index[warm._keys[jobs]]
    assert True in entry["mentions"].values()  # the closure's answer for these bytes was kept
    assert warm_found == cold_found
    assert _run(tmp_path, use_cache=False)[1] == cold_found
    (tmp_path / "proj/jobs.py").write_text("def later():\n    return 1\n", encoding="utf-8")
    changed, _ = _run(tmp_path)
    assert jobs not in changed.sources  # the new bytes spell no exported name: asked again, answered no

"""The command line, run as a real subprocess on small Celery projects.

Every run asserts that stderr holds no traceback: anything a user can cause must end in a
message and an exit code (0 nothing left, 1 findings remain, 2 usage/config/file error).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = """\
from celery import Celery

app = Celery("proj")
app.conf.accept_content = ["json", "pickle"]
"""

TASKS = """\
from proj.celery import app


@app.task
def sync_inventory(store_id):
    return store_id


@app.task(time_limit=60, soft_time_limit=30)
def bounded(order_id):
    return order_id
"""

TASKS_FIXED = """\
from proj.celery import app


@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    return store_id


@app.task(time_limit=60, soft_time_limit=30)
def bounded(order_id):
    return order_id
"""

REPO = Path(__file__).resolve().parents[1]

# The rules these tests lean on; naming them keeps the tests stable as rules are added.
RULES = "QLT101,QLT501"


@dataclass
class Result:
    rc: int
    out: str
    err: str


def qlint(cwd: Path, *args, stdin: bytes | None = None, traceback_ok: bool = False) -> Result:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # qlint not installed
    proc = subprocess.run(
        [sys.executable, "-m", "qlint", *map(str, args)], cwd=cwd, input=stdin if stdin is not None else b"",
        capture_output=True, timeout=120, env=env,
    )
    res = Result(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    if not traceback_ok:
        assert "Traceback" not in res.err, res.err
        assert "internal error" not in res.err, res.err
    return res


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASKS})
    return tmp_path


def codes_of(res: Result) -> list[tuple[str, int, str]]:
    """(path, row, code) of every finding, from --output-format json."""
    data = json.loads(res.out)
    return sorted((Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in data)


def json_run(cwd: Path, *args, **kw) -> tuple[Result, list[tuple[str, int, str]]]:
    res = qlint(cwd, "check", "--output-format", "json", *args, **kw)
    assert res.rc in (0, 1), res.err
    return res, codes_of(res)


# -- basics -------------------------------------------------------------------------------

def test_version(tmp_path):
    from qlint import __version__

    res = qlint(tmp_path, "--version")
    assert res.rc == 0
    assert res.out.strip() == f"qlint {__version__}"


def test_exit_codes(project):
    res = qlint(project, "check", "--select", RULES)
    assert res.rc == 1
    assert "QLT101" in res.out and "QLT501" in res.out
    assert "proj/tasks.py:4:1" in res.out

    clean = project / "clean"
    write(clean, {"tasks.py": """\
        from celery import Celery

        app = Celery("clean", task_time_limit=60)

        @app.task
        def ok():
            pass
        """})
    res = qlint(clean, "check", "--select", RULES)
    assert res.rc == 0, res.out
    assert "All checks passed!" in res.out

    res = qlint(project, "check", "--no-such-option")
    assert res.rc == 2
    assert "--no-such-option" in res.err


def test_default_command_is_check(project):
    """`qlint [PATHS] [options]` means `qlint check`."""
    as_check = qlint(project, "check", "--select", RULES, "--output-format", "concise", "proj")
    bare = qlint(project, "--select", RULES, "--output-format", "concise", "proj")
    assert (bare.rc, bare.out) == (as_check.rc, as_check.out)
    no_args = qlint(project)
    assert no_args.rc == 1 and "QLT101" in no_args.out


def test_fix_without_subcommand(project):
    res = qlint(project, "--fix", "--unsafe-fixes", "--select", RULES)
    assert res.rc == 0, res.out + res.err
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED
    assert 'accept_content = ["json"]' in (project / "proj/celery.py").read_text()


def test_nonexistent_path(project):
    res = qlint(project, "check", "missing_dir/nope.py")
    assert res.rc == 2
    assert "nope.py" in res.out + res.err


# -- output formats -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["full", "concise", "json", "json-lines", "github", "sarif"])
def test_output_formats_parse(project, fmt):
    res = qlint(project, "check", "--select", RULES, "--output-format", fmt)
    assert res.rc == 1, res.err
    out = res.out
    if fmt == "json":
        data = json.loads(out)
        assert {d["code"] for d in data} == {"QLT101", "QLT501"}
        for d in data:
            assert Path(d["filename"]).is_absolute()
            assert d["location"]["row"] >= 1 and d["location"]["column"] >= 1
    elif fmt == "json-lines":
        lines = out.splitlines()
        assert len(lines) == 2
        assert {json.loads(line)["code"] for line in lines} == {"QLT101", "QLT501"}
    elif fmt == "sarif":
        data = json.loads(out)
        assert data["version"] == "2.1.0"
        results = data["runs"][0]["results"]
        assert {r["ruleId"] for r in results} == {"QLT101", "QLT501"}
    elif fmt == "github":
        lines = out.splitlines()
        assert lines and all(line.startswith("::") for line in lines), out
        assert any("file=proj/tasks.py" in line and "line=4" in line for line in lines)
    elif fmt == "concise":
        assert "proj/tasks.py:4:1: QLT101" in out
        assert "proj/celery.py:4:1: QLT501" in out
    else:
        assert "--> proj/tasks.py:4:1" in out
        assert "Found 2 errors." in out


@pytest.mark.parametrize("fmt", ["json", "json-lines", "sarif"])
def test_machine_formats_when_clean(tmp_path, fmt):
    write(tmp_path, {"tasks.py": "x = 1\n"})
    res = qlint(tmp_path, "check", "--output-format", fmt)
    assert res.rc == 0
    if fmt == "json":
        assert json.loads(res.out) == []
    elif fmt == "json-lines":
        assert res.out.strip() == ""
    else:
        assert json.loads(res.out)["runs"][0]["results"] == []


def test_output_format_from_config(project):
    write(project, {"qlint.toml": 'output-format = "json-lines"\n'})
    res = qlint(project, "check", "--select", RULES)
    assert res.rc == 1
    assert {json.loads(line)["code"] for line in res.out.splitlines()} == {"QLT101", "QLT501"}
    # the command line wins
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert "proj/tasks.py:4:1: QLT101" in res.out


def test_output_file(project):
    res = qlint(project, "check", "--select", RULES, "--output-format", "json", "--output-file",
                "reports/qlint.json")
    assert res.rc == 1
    assert res.out == ""
    data = json.loads((project / "reports/qlint.json").read_text(encoding="utf-8"))
    assert {d["code"] for d in data} == {"QLT101", "QLT501"}
    res = qlint(project, "check", "--select", RULES, "-o", "out.txt", "--output-format", "concise")
    assert res.rc == 1 and res.out == ""
    assert "QLT101" in (project / "out.txt").read_text(encoding="utf-8")


def test_statistics(project):
    res = qlint(project, "check", "--select", RULES, "--statistics")
    assert res.rc == 1
    lines = [line for line in res.out.splitlines() if "\t" in line]
    assert len(lines) == 2
    by_code = {line.split("\t")[1].strip(): line for line in lines}
    assert set(by_code) == {"QLT101", "QLT501"}
    assert by_code["QLT101"].split("\t")[0].strip() == "1"
    assert "task-unbounded-runtime" in by_code["QLT101"]
    assert "-->" not in res.out


def test_quiet(project):
    res = qlint(project, "check", "--select", RULES, "--quiet", "--output-format", "concise")
    assert res.rc == 1
    assert "QLT101" in res.out
    assert "Found" not in res.out


def test_exit_zero(project):
    res = qlint(project, "check", "--select", RULES, "--exit-zero")
    assert res.rc == 0
    assert "QLT101" in res.out


def test_exit_non_zero_on_fix(project):
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix")
    assert res.rc == 1
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED
    # nothing left to fix now: exit 0 even with the flag
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix")
    assert res.rc == 0, res.out


def test_no_cache_accepted(project):
    res = qlint(project, "check", "--select", RULES, "--no-cache")
    assert res.rc == 1 and "QLT101" in res.out


# -- selection --------------------------------------------------------------------------------

def test_select_ignore_extend_select(project):
    _, found = json_run(project, "--select", "QLT5")
    assert {c for _, _, c in found} == {"QLT501"}
    _, found = json_run(project, "--select", "QLT501,QLT101")
    assert {c for _, _, c in found} == {"QLT101", "QLT501"}
    _, found = json_run(project, "--select", "qlt101")  # case-insensitive
    assert {c for _, _, c in found} == {"QLT101"}
    _, found = json_run(project, "--select", "QLT", "--ignore", "QLT1")
    assert "QLT501" in {c for _, _, c in found}
    assert not [c for _, _, c in found if c.startswith("QLT1")]
    _, found = json_run(project, "--select", "QLT5", "--extend-select", "QLT101")
    assert {c for _, _, c in found} == {"QLT101", "QLT501"}
    # the more specific selector wins, as in ruff
    _, found = json_run(project, "--select", "QLT101", "--ignore", "QLT1")
    assert {c for _, _, c in found} == {"QLT101"}
    # repeated options accumulate
    _, found = json_run(project, "--select", "QLT101", "--select", "QLT501")
    assert {c for _, _, c in found} == {"QLT101", "QLT501"}
    # config select, command-line extend-select and ignore
    write(project, {"qlint.toml": 'select = ["QLT5"]\n'})
    _, found = json_run(project, "--extend-select", "QLT101")
    assert {c for _, _, c in found} == {"QLT101", "QLT501"}
    _, found = json_run(project, "--ignore", "QLT501")
    assert found == []


@pytest.mark.parametrize("option", ["--select", "--extend-select", "--ignore"])
@pytest.mark.parametrize("code", ["QLT999", "E501", "QLT1x"])
def test_unknown_code_is_usage_error(project, option, code):
    res = qlint(project, "check", option, code)
    assert res.rc == 2
    assert code.upper() in res.err.upper()
    assert res.out == ""


def test_unknown_code_in_config(project):
    write(project, {"pyproject.toml": '[tool.qlint]\nignore = ["QLT999"]\n'})
    res = qlint(project, "check")
    assert res.rc == 2
    assert "QLT999" in res.err and "pyproject.toml" in res.err and "ignore" in res.err


# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,text", [
    ("pyproject.toml", "[tool.qlint]\nselect = [\"QLT1\"]\nbogus-key = 1\n"),
    ("qlint.toml", "select = [\"QLT1\"]\nbogus-key = 1\n"),
    (".qlint.toml", "bogus-key = 1\n"),
])
def test_unknown_config_key(project, name, text):
    write(project, {name: text})
    res = qlint(project, "check")
    assert res.rc == 2
    assert "bogus-key" in res.err
    assert name in res.err
    assert res.out == ""


@pytest.mark.parametrize("text,key", [
    ('[tool.qlint]\nselect = "QLT101"\n', "select"),
    ("[tool.qlint]\ndefault-time-limit = \"300\"\n", "default-time-limit"),
    ("[tool.qlint]\ndefault-time-limit = 0\n", "default-time-limit"),
    ("[tool.qlint]\nmax-retries = -1\n", "max-retries"),
    ("[tool.qlint]\nunsafe-fixes = \"yes\"\n", "unsafe-fixes"),
    ("[tool.qlint]\noutput-format = \"xml\"\n", "output-format"),
    ("[tool.qlint]\nper-file-ignores = [\"QLT1\"]\n", "per-file-ignores"),
    ("[tool.qlint.per-file-ignores]\n\"tests/**\" = \"QLT1\"\n", "per-file-ignores"),
    ("[tool.qlint]\nexclude = \"build\"\n", "exclude"),
])
def test_bad_config_value(project, text, key):
    write(project, {"pyproject.toml": text})
    res = qlint(project, "check")
    assert res.rc == 2
    assert f"`{key}`" in res.err
    assert "pyproject.toml" in res.err


@pytest.mark.parametrize("name,text", [
    ("pyproject.toml", "[tool.qlint]\nselect = [\n"),
    ("pyproject.toml", "[tool.qlint\n"),
    ("qlint.toml", "select = QLT1\n"),
    ("pyproject.toml", "[tool]\nqlint = 3\n"),
])
def test_invalid_toml(project, name, text):
    write(project, {name: text})
    res = qlint(project, "check")
    assert res.rc == 2
    assert name in res.err
    assert res.out == ""


@pytest.mark.parametrize("text", ["tool = 3\n", 'tool = "x"\n'])
def test_qlint_toml_with_scalar_tool_key(project, text):
    write(project, {"qlint.toml": text})
    res = qlint(project, "check")
    assert res.rc == 2
    assert "qlint.toml" in res.err and "tool" in res.err


def test_config_not_utf8(project):
    (project / "qlint.toml").write_bytes(b'select = ["QLT1"] # \xff\xfe\n')
    res = qlint(project, "check")
    assert res.rc == 2 and "qlint.toml" in res.err


def test_config_found_walking_up(project):
    write(project, {"pyproject.toml": '[tool.qlint]\nselect = ["QLT5"]\n'})
    sub = project / "proj"
    res = qlint(sub, "check", "--output-format", "json")
    assert codes_of(res) == [("celery.py", 4, "QLT501")]
    # a bad key is found from a subfolder too, and reported with the file's path
    write(project, {"pyproject.toml": '[tool.qlint]\nselct = ["QLT5"]\n'})
    res = qlint(sub, "check")
    assert res.rc == 2
    assert "selct" in res.err and str(project / "pyproject.toml") in res.err


@pytest.mark.parametrize("name", ["setup.cfg", "tox.ini"])
def test_ini_section_configures_qlint(project, name):
    """A ``[qlint]`` section of setup.cfg or tox.ini, written as flake8 reads its own: lists split
    on commas and new lines, ``glob: codes`` lines for per-file-ignores."""
    write(project, {name: "[flake8]\nmax-line-length = 100\n\n[qlint]\nselect = QLT1,\n    QLT5\n"
                          "ignore = QLT101\nper-file-ignores =\n    proj/other.py: QLT1\nunsafe_fixes = no\n"})
    res = qlint(project / "proj", "check", "--output-format", "json")
    assert codes_of(res) == [("celery.py", 4, "QLT501")]
    write(project, {name: "[qlint]\nselect = QLT5\nper-file-ignores =\n    proj/tasks.py: QLT1\n"
                          "    proj/celery.py: QLT502, QLT501\n"})
    assert codes_of(qlint(project, "check", "--output-format", "json")) == []
    write(project, {name: "[qlint]\nselect = QLT5\nbogus = 1\nmax-retries = x\n"})
    res = qlint(project, "check")
    assert res.rc == 2 and name in res.err
    assert "`bogus`" in res.err and "`max-retries`" in res.err  # every problem, not only the first


@pytest.mark.parametrize("name", ["setup.cfg", "tox.ini"])
def test_ini_without_qlint_section_is_skipped(project, name):
    write(project, {"qlint.toml": 'select = ["QLT5"]\n', f"proj/{name}": "[flake8]\nmax-line-length = 99\n"})
    res = qlint(project / "proj", "check", "--output-format", "json")
    assert codes_of(res) == [("celery.py", 4, "QLT501")]
    write(project, {f"proj/{name}": "[qlint\nselect = QLT1\n"})
    res = qlint(project / "proj", "check")
    assert res.rc == 2 and "invalid INI" in res.err


def test_several_bad_keys_are_all_reported(project):
    write(project, {"pyproject.toml": '[tool.qlint]\nselct = ["QLT5"]\nignor = []\nmax-retries = -1\n'})
    res = qlint(project, "check")
    assert res.rc == 2
    assert "`selct`" in res.err and "`ignor`" in res.err and "`max-retries`" in res.err
    assert all(line.startswith("qlint: error: ") for line in res.err.splitlines())


def test_pyproject_without_qlint_table_is_skipped(project):
    write(project, {"qlint.toml": 'select = ["QLT5"]\n', "proj/pyproject.toml": '[tool.black]\nline-length = 99\n'})
    res = qlint(project / "proj", "check", "--output-format", "json")
    assert codes_of(res) == [("celery.py", 4, "QLT501")]


def test_explicit_config(project):
    write(project, {"configs/strict.toml": 'select = ["QLT101"]\n'})
    res = qlint(project, "check", "--config", "configs/strict.toml", "--output-format", "json")
    assert codes_of(res) == [("tasks.py", 4, "QLT101")]
    res = qlint(project, "check", "--config", "configs/missing.toml")
    assert res.rc == 2 and "missing.toml" in res.err


def test_per_file_ignores(project):
    write(project, {
        "pyproject.toml": '[tool.qlint]\nselect = ["QLT101", "QLT501"]\n'
                          '[tool.qlint.per-file-ignores]\n"proj/tasks.py" = ["QLT1"]\n',
    })
    res, found = json_run(project)
    assert found == [("celery.py", 4, "QLT501")]
    # relative to the configuration file, also when run from a subfolder
    res, found = json_run(project / "proj")
    assert found == [("celery.py", 4, "QLT501")]


def test_exclude_and_force_exclude(project):
    write(project, {"qlint.toml": 'select = ["QLT101", "QLT501"]\nextend-exclude = ["proj/tasks.py"]\n'})
    _, found = json_run(project)
    assert found == [("celery.py", 4, "QLT501")]
    # a file named on the command line is checked unless --force-exclude
    _, found = json_run(project, "proj/tasks.py")
    assert found == [("tasks.py", 4, "QLT101")]
    _, found = json_run(project, "--force-exclude", "proj/tasks.py")
    assert found == []


# -- noqa ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("comment,suppressed", [
    ("# noqa", True),
    ("# noqa: QLT101", True),
    ("# noqa: QLT1", True),
    ("# noqa:QLT501,QLT101", True),
    ("# noqa: qlt101", True),
    ("# noqa: QLT5", False),
    ("# noqa: QLT102", False),
])
def test_noqa_line(project, comment, suppressed):
    text = TASKS.replace("@app.task\n", f"@app.task  {comment}\n", 1)
    write(project, {"proj/tasks.py": text})
    _, found = json_run(project, "--select", RULES)
    assert (("tasks.py", 4, "QLT101") not in found) is suppressed
    assert ("celery.py", 4, "QLT501") in found


@pytest.mark.parametrize("directive,suppressed", [
    ("# qlint: noqa", {"QLT101", "QLT501"}),
    ("# flake8: noqa", {"QLT101", "QLT501"}),
    ("# qlint: noqa: QLT5", {"QLT501"}),
    ("# qlint: noqa: QLT101", {"QLT101"}),
    ("# qlint: noqa: QLT1,QLT5", {"QLT101", "QLT501"}),
])
def test_noqa_file(project, directive, suppressed):
    text = APP.replace('app = Celery("proj")\n', 'app = Celery("proj")\n\n@app.task\ndef here():\n    pass\n')
    write(project, {"proj/celery.py": f"{directive}\n{text}", "proj/tasks.py": "x = 1\n"})
    _, found = json_run(project, "--select", RULES)
    assert {c for _, _, c in found} == {"QLT101", "QLT501"} - suppressed


def test_noqa_on_decorator_line_of_multiline_task(project):
    write(project, {"proj/tasks.py": """\
        from proj.celery import app


        @app.task(
            bind=True,
        )
        def charge(self, order_id):  # noqa: QLT101
            return order_id
        """})
    _, found = json_run(project, "--select", "QLT101")
    assert found == []


# -- fixing ------------------------------------------------------------------------------------

def test_fix_unsafe_rewrites_and_is_idempotent(project):
    celery_before = (project / "proj/celery.py").read_bytes()
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--output-format", "json")
    assert res.rc == 0, res.out + res.err
    assert json.loads(res.out) == []
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED
    after = (project / "proj/celery.py").read_bytes()
    assert after == celery_before.replace(b'["json", "pickle"]', b'["json"]')

    snapshot = {p: p.read_bytes() for p in project.rglob("*.py")}
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes")
    assert res.rc == 0
    assert "All checks passed!" in res.out
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == snapshot


def test_fix_reports_remaining(project):
    """A finding without a fix stays reported after --fix, and the exit code says so."""
    write(project, {"proj/base.py": """\
        from proj.celery import app


        class Forever(app.Task):
            time_limit = None


        @app.task(base=Forever)
        def run():
            pass
        """})
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--output-format", "json")
    assert res.rc == 1
    assert codes_of(res) == [("base.py", 8, "QLT101")]
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED


def test_fix_without_unsafe_fixes_applies_no_unsafe_fix(project):
    snapshot = {p: p.read_bytes() for p in project.rglob("*.py")}
    res = qlint(project, "check", "--select", RULES, "--fix")
    assert res.rc == 1
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == snapshot
    assert "--unsafe-fixes" in res.out
    # unsafe-fixes from the configuration counts as --unsafe-fixes; --no-unsafe-fixes turns it off
    write(project, {"qlint.toml": "unsafe-fixes = true\n"})
    res = qlint(project, "check", "--select", RULES, "--fix", "--no-unsafe-fixes")
    assert res.rc == 1
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == snapshot
    res = qlint(project, "check", "--select", RULES, "--fix")
    assert res.rc == 0
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED


def test_diff(project):
    snapshot = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    res = qlint(project, "check", "--select", RULES, "--diff", "--unsafe-fixes")
    assert res.rc == 1
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == snapshot
    assert "--- proj/tasks.py\n+++ proj/tasks.py\n" in res.out
    assert "-@app.task\n+@app.task(time_limit=300, soft_time_limit=270)\n" in res.out
    assert "--- proj/celery.py\n+++ proj/celery.py\n" in res.out
    assert '+app.conf.accept_content = ["json"]\n' in res.out
    # nothing fixable: exit 0, no diff
    res = qlint(project, "check", "--select", RULES, "--diff")
    assert res.rc == 0
    assert "---" not in res.out


def test_file_mode_preserved(project):
    path = project / "proj/tasks.py"
    os.chmod(path, 0o640)
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes")
    assert res.rc == 0
    assert path.read_text() == TASKS_FIXED
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in path.parent.iterdir() if "qlint-tmp" in p.name]


def test_fix_named_file_leaves_context_files_alone(project):
    """Files read only for context (the app module) are never edited when other files are named."""
    celery_before = (project / "proj/celery.py").read_bytes()
    res = qlint(project, "check", "--select", RULES, "--diff", "--unsafe-fixes", "proj/tasks.py")
    assert res.rc == 1
    assert "proj/celery.py" not in res.out
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--output-format", "json",
                "proj/tasks.py")
    assert res.rc == 0, res.out + res.err
    assert json.loads(res.out) == []
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED
    assert (project / "proj/celery.py").read_bytes() == celery_before
    # stdin: only the source on stdin is fixed
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--stdin-filename",
                "proj/tasks.py", "-", stdin=TASKS.encode())
    assert res.out == TASKS_FIXED
    assert (project / "proj/celery.py").read_bytes() == celery_before


def test_fix_writes_through_symlink(project):
    """A symlinked file is fixed in its target; the link stays a link."""
    target = project / "shared/tasks_impl.py"
    target.parent.mkdir()
    target.write_text(TASKS)
    link = project / "proj/tasks.py"
    link.unlink()
    link.symlink_to(target)
    res = qlint(project, "check", "--select", "QLT101", "--fix", "--unsafe-fixes", "proj")
    assert res.rc == 0, res.out + res.err
    assert link.is_symlink()
    assert target.read_text() == TASKS_FIXED


def test_fix_read_only_file(project):
    # qlint judges by the file's mode bits, so this holds for root too.
    path = project / "proj/tasks.py"
    os.chmod(path, 0o444)
    try:
        res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes")
    finally:
        os.chmod(path, 0o644)
    assert res.rc == 2
    assert "tasks.py" in res.out + res.err
    assert path.read_text() == TASKS


# -- stdin ----------------------------------------------------------------------------------------

def test_stdin_with_filename(project):
    source = (project / "proj/tasks.py").read_bytes()
    (project / "proj/tasks.py").write_text("x = 1\n")
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise", "--stdin-filename",
                "proj/tasks.py", "-", stdin=source)
    assert res.rc == 1
    assert "proj/tasks.py:4:1: QLT101" in res.out
    # only the stdin file is reported, not the rest of the project
    assert "celery.py" not in res.out


def test_stdin_default_name(tmp_path):
    source = TASKS.replace("from proj.celery import app", APP)
    res = qlint(tmp_path, "check", "--select", "QLT101", "--output-format", "json", "-", stdin=source.encode())
    assert res.rc == 1
    data = json.loads(res.out)
    assert [d["code"] for d in data] == ["QLT101"]
    assert Path(data[0]["filename"]).name == "stdin.py"


def test_stdin_sees_project_context(project):
    """With --stdin-filename the file is linted as the file on disk would be: the app's settings count."""
    write(project, {"proj/celery.py": APP + "app.conf.task_time_limit = 120\n"})
    source = (project / "proj/tasks.py").read_bytes()
    on_disk = qlint(project, "check", "--select", "QLT101", "--output-format", "json", "proj/tasks.py")
    assert codes_of(on_disk) == []
    res = qlint(project, "check", "--select", "QLT101", "--output-format", "json", "--stdin-filename",
                "proj/tasks.py", "-", stdin=source)
    assert codes_of(res) == []

    write(project, {"proj/celery.py": APP + "app.conf.task_time_limit = None\n"})
    on_disk = qlint(project, "check", "--select", "QLT101", "--output-format", "json", "proj/tasks.py")
    res = qlint(project, "check", "--select", "QLT101", "--output-format", "json", "--stdin-filename",
                "proj/tasks.py", "-", stdin=source)
    assert codes_of(on_disk) == [("tasks.py", 4, "QLT101")]
    assert codes_of(res) == codes_of(on_disk)


def test_stdin_fix_writes_source_to_stdout(project):
    source = (project / "proj/tasks.py").read_bytes()
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes", "--stdin-filename",
                "proj/tasks.py", "-", stdin=source)
    assert res.rc == 0, res.err
    assert res.out == TASKS_FIXED
    assert (project / "proj/tasks.py").read_bytes() == source  # nothing written to disk
    # without --unsafe-fixes the source comes back unchanged, and the finding is reported on stderr
    res = qlint(project, "check", "--select", RULES, "--fix", "--stdin-filename", "proj/tasks.py", "-",
                stdin=source)
    assert res.rc == 1
    assert res.out.encode() == source
    assert "QLT101" in res.err


def test_stdin_diff(project):
    source = (project / "proj/tasks.py").read_bytes()
    res = qlint(project, "check", "--select", RULES, "--diff", "--unsafe-fixes", "--stdin-filename",
                "proj/tasks.py", "-", stdin=source)
    assert res.rc == 1
    assert "--- proj/tasks.py\n+++ proj/tasks.py\n" in res.out
    assert "+@app.task(time_limit=300, soft_time_limit=270)\n" in res.out
    assert (project / "proj/tasks.py").read_bytes() == source


def test_stdin_syntax_error(project):
    res = qlint(project, "check", "--stdin-filename", "proj/tasks.py", "-", stdin=b"from celery import (\n")
    assert res.rc == 2
    assert "tasks.py" in res.out + res.err
    res = qlint(project, "check", "--fix", "--stdin-filename", "proj/tasks.py", "-", stdin=b"from celery import (\n")
    assert res.rc == 2


def test_stdin_with_other_paths(project):
    res = qlint(project, "check", "-", "proj", stdin=b"")
    assert res.rc == 2 and "stdin" in res.err


# -- files that cannot be checked -------------------------------------------------------------------

def test_syntax_error_file(project):
    write(project, {"proj/broken.py": """\
        from proj.celery import app

        @app.task
        def broken(:
            pass
        """})
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc == 2
    assert "proj/broken.py" in res.out + res.err
    assert "SyntaxError" in res.out + res.err or "syntax" in (res.out + res.err).lower()
    # the other files are still reported
    assert "proj/tasks.py:4:1: QLT101" in res.out
    assert "proj/celery.py:4:1: QLT501" in res.out
    # --fix still fixes the others, leaves the broken file alone and exits 2
    before = (project / "proj/broken.py").read_bytes()
    res = qlint(project, "check", "--select", RULES, "--fix", "--unsafe-fixes")
    assert res.rc == 2
    assert (project / "proj/tasks.py").read_text() == TASKS_FIXED
    assert (project / "proj/broken.py").read_bytes() == before


def test_syntax_error_in_file_without_celery(project):
    """A file without task code is not parsed when a folder is checked (its grammar is not
    qlint's to judge, and checking every file's would cost more than the rest of the run); named
    on the command line, as pre-commit names changed files, its syntax error is reported."""
    write(project, {"proj/util.py": "def helper(:\n    return 1\n"})
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc == 1
    assert "proj/util.py" not in res.out + res.err
    assert "proj/tasks.py:4:1: QLT101" in res.out
    for _ in range(2):  # the second time with the folder run's cache: the named file is still parsed
        res = qlint(project, "check", "--select", RULES, "proj/util.py")
        assert res.rc == 2
        assert "proj/util.py" in res.out + res.err
    res = qlint(project, "check", "--select", RULES, "proj/util.py")
    assert res.rc == 2
    assert "proj/util.py" in res.out + res.err
    assert "All checks passed" not in res.out


@pytest.mark.parametrize("content", [
    b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00",
    b"from celery import Celery\x00\x00\x01\x02",
])
def test_binary_file(project, content):
    (project / "proj/x.py").write_bytes(content)
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc == 2
    assert "proj/x.py" in res.out + res.err
    assert "proj/tasks.py:4:1: QLT101" in res.out


@pytest.mark.parametrize("content", [
    b"# celery task\nname = 'caf\xe9'\n",  # latin-1 bytes without a cookie
    b"# -*- coding: utf-8 -*-\nname = '\xff\xfe'\n",
    b"# -*- coding: klingon -*-\nfrom celery import shared_task\n",
    b"value = 'caf\xe9'\n",
])
def test_undecodable_file(project, content):
    (project / "proj/undecodable.py").write_bytes(content)
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc == 2
    assert "proj/undecodable.py" in res.out + res.err
    assert "proj/tasks.py:4:1: QLT101" in res.out


def test_deeply_nested_file(project):
    """libcst's native parser overflows its stack on these; CPython rejects them: a message, not a crash."""
    write(project, {
        "proj/nested.py": "from proj.celery import app\nx = " + "[" * 3000 + "]" * 3000 + "\n",
        "proj/indented.py": "from proj.celery import app\n" + "".join(" " * i + "if app:\n" for i in range(150))
                            + " " * 150 + "pass\n",
    })
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc == 2, res.err
    assert "proj/nested.py" in res.out + res.err and "proj/indented.py" in res.out + res.err
    assert "proj/tasks.py:4:1: QLT101" in res.out


def test_long_operator_chain_does_not_crash(project):
    write(project, {"proj/chain.py": "from proj.celery import app\nx = 1" + " + 1" * 5000 + "\n"})
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc in (1, 2), res.err  # 2 where CPython's parser gives up too (3.11, 3.12)
    if res.rc == 2:
        assert "proj/chain.py" in res.out + res.err
    assert "proj/tasks.py:4:1: QLT101" in res.out


def test_unreadable_directory_entry(project):
    """A dangling symlink named *.py is reported or skipped, never a traceback."""
    (project / "proj/dangling.py").symlink_to(project / "proj/nowhere.py")
    res = qlint(project, "check", "--select", RULES, "--output-format", "concise")
    assert res.rc in (1, 2)
    assert "proj/tasks.py:4:1: QLT101" in res.out


# -- rule ---------------------------------------------------------------------------------------

def test_rule_markdown(tmp_path):
    res = qlint(tmp_path, "rule", "QLT101")
    assert res.rc == 0
    assert "## What it does" in res.out
    assert "QLT101" in res.out and "task-unbounded-runtime" in res.out
    lower = qlint(tmp_path, "rule", "qlt101")
    assert lower.out == res.out
    by_name = qlint(tmp_path, "rule", "task-unbounded-runtime")  # ruff's `ruff rule` takes either
    assert by_name.rc == 0 and by_name.out == res.out


def test_rule_all_json(tmp_path):
    from qlint.lint.registry import all_codes

    res = qlint(tmp_path, "rule", "--all", "--output-format", "json")
    assert res.rc == 0
    data = json.loads(res.out)
    assert isinstance(data, list)
    assert sorted(r["code"] for r in data) == sorted(all_codes())
    for rule in data:
        for key in ("code", "name", "summary", "explanation", "fix_availability", "default_enabled"):
            assert key in rule, (rule.get("code"), key)
        assert rule["fix_availability"] in ("None", "Sometimes", "Always")
        assert isinstance(rule["default_enabled"], bool)
        assert "## What it does" in rule["explanation"]
    one = json.loads(qlint(tmp_path, "rule", "QLT501", "--output-format", "json").out)
    assert one["code"] == "QLT501"


def test_rule_all_markdown(tmp_path):
    res = qlint(tmp_path, "rule", "--all")
    assert res.rc == 0
    assert res.out.count("## What it does") >= 2


def test_rule_errors(tmp_path):
    res = qlint(tmp_path, "rule", "QLT999")
    assert res.rc == 2 and "QLT999" in res.err
    res = qlint(tmp_path, "rule", "task-unbounded")  # a name is matched whole
    assert res.rc == 2 and "task-unbounded" in res.err
    res = qlint(tmp_path, "rule")
    assert res.rc == 2 and res.err


def test_fix_on_stdin_echoes_input_qlint_cannot_fix(tmp_path):
    manifest = b"apiVersion: apps/v1\nkind: Deployment  # a comment\n"
    res = qlint(tmp_path, "check", "--fix", "--stdin-filename", "rendered.yaml", "-", stdin=manifest)
    assert res.rc == 0
    assert res.out.encode("utf-8") == manifest
    assert "All checks passed!" in res.err


RENDERED = b"""\
# Source: proj/templates/beat.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-beat
spec:
  replicas: 2  # from values.yaml
  template:
    spec:
      containers:
        - name: beat
          image: "registry.example.com/proj:1.4.2"
          args: ["celery", "-A", "proj", "beat", "-l", "info"]
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {memory: 256Mi}
"""


def test_rendered_helm_on_stdin_is_linted_and_fixed(tmp_path):
    """``helm template ... | qlint check --stdin-filename rendered.yaml -``: findings under that
    name; with ``--fix`` the fixed manifest on stdout, comments kept, and it loads."""
    import yaml

    res = qlint(tmp_path, "check", "--output-format", "concise", "--stdin-filename", "rendered.yaml", "-",
                stdin=RENDERED)
    assert res.rc == 1
    assert "rendered.yaml:3:1: QLT703" in res.out
    res = qlint(tmp_path, "check", "--fix", "--unsafe-fixes", "--stdin-filename", "rendered.yaml", "-",
                stdin=RENDERED)
    fixed = res.out
    assert "replicas: 1  # from values.yaml" in fixed and "type: Recreate" in fixed
    assert "# Source: proj/templates/beat.yaml" in fixed
    assert yaml.safe_load(fixed)["spec"]["strategy"] == {"type": "Recreate"}


# -- files that cannot be checked, in every format; nothing checked is no pass ---------------

@pytest.mark.parametrize("fmt", ["full", "concise", "json", "json-lines", "github", "sarif"])
def test_unchecked_file_in_every_format(project, fmt):
    write(project, {"proj/broken.py": "from proj.celery import app\n\n@app.task\ndef broken(:\n    pass\n"})
    res = qlint(project, "check", "--select", "QLT501", "--no-cache", "--output-format", fmt)
    assert res.rc == 2
    if fmt == "concise":
        assert "proj/broken.py:4:12: invalid-syntax invalid syntax" in res.out
    elif fmt == "full":
        assert "invalid-syntax invalid syntax\n --> proj/broken.py:4:12" in res.out
    elif fmt == "json":
        (error,) = [d for d in json.loads(res.out) if d["code"] == "invalid-syntax"]
        assert error["location"] == {"row": 4, "column": 12} and error["severity"] == "error"
    elif fmt == "json-lines":
        assert any(json.loads(line)["code"] == "invalid-syntax" for line in res.out.splitlines())
    elif fmt == "github":
        assert "::error title=qlint (invalid-syntax),file=proj/broken.py,line=4" in res.out
    else:
        results = json.loads(res.out)["runs"][0]["results"]
        assert any(r["ruleId"] == "invalid-syntax" and
                   r["locations"][0]["physicalLocation"]["region"]["startLine"] == 4 for r in results)
    if fmt not in ("full", "concise"):  # machine output: a human still reads why on stderr
        assert "proj/broken.py" in res.err


def test_a_named_file_that_is_not_checked_says_why(project):
    write(project, {"deploy/chart/templates/worker.yaml": "kind: Deployment\nspec:\n  replicas: {{ .Values.n }}\n",
                    "notes.yaml": "title: release notes\n"})
    res = qlint(project, "check", "--no-cache", "deploy/chart/templates/worker.yaml", "notes.yaml")
    assert res.rc == 0
    assert "deploy/chart/templates/worker.yaml was not checked: " in res.err
    assert "notes.yaml was not checked: " in res.err


def test_nothing_found_is_no_pass(tmp_path):
    (tmp_path / "README.md").write_text("nothing here\n")
    res = qlint(tmp_path, "check", "--no-cache", ".")
    assert res.rc == 0 and "no Python files or manifests found" in res.err

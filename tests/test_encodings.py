"""Encodings, BOMs, line endings and missing final newlines.

Findings must sit on the right row and (character) column whatever the bytes look like,
and a fix must keep every byte it does not mean to change: the BOM, the line endings
(lines a fix adds use the file's own), the file's encoding.
"""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import fix, make_linter

LATIN1 = """\
# -*- coding: latin-1 -*-
# Größenänderung der Bilder — café
from celery import Celery

app = Celery("bilder")
app.conf.update(broker_url="rédis://localhost", accept_content=["json", "pickle"])


@app.task
def größe_ändern(bild_id):
    \"\"\"Ändert die Größe.\"\"\"
    return "çà" + str(bild_id)
""".replace(" — ", " - ")  # the em dash is not latin-1

LATIN1_FIXED = LATIN1.replace('accept_content=["json", "pickle"]', 'accept_content=["json"]').replace(
    "@app.task\n", "@app.task(time_limit=300, soft_time_limit=270)\n")

MULTILINE = """\
from celery import Celery

app = Celery("proj")
app.conf.accept_content = ["json", "pickle"]


@app.task(
    bind=True,
    max_retries=5
)
def charge(self, order_id):
    return order_id


class Export(app.Task):
    \"\"\"Export everything.\"\"\"

    def run(self):
        return "é"
"""


# Three more tasks of the same app that set their limits: the fixtures' tasks without one are then
# outliers, reported and fixed one by one (the per-task fixes are what these tests exercise);
# the app-level finding has a test of its own below.
SIBLINGS = "from tasks import app\n\n" + "".join(
    f"@app.task(time_limit=60, soft_time_limit=30)\ndef bounded_{i}():\n    pass\n\n" for i in range(3))


def _siblings(root: Path) -> None:
    if not (root / "siblings.py").exists():
        (root / "siblings.py").write_text(SIBLINGS, encoding="utf-8")


def diagnostics(root: Path, codes=("QLT101", "QLT501")):
    _siblings(root)
    linter = make_linter(root, list(codes))
    diags = linter.lint()
    assert not linter.errors, linter.errors
    return sorted((Path(d.path).name, d.location.row, d.location.column, d.code) for d in diags)


def fixed_bytes(root: Path, codes=("QLT101", "QLT501")) -> dict[str, bytes]:
    _siblings(root)
    outcome = fix(root, list(codes), unsafe=True)
    assert not outcome.errors, outcome.errors
    return {Path(k).name: v.raw for k, v in outcome.fixed.items()}


def run_cli(cwd: Path, *args) -> subprocess.CompletedProcess:
    _siblings(cwd)
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "qlint", *args], cwd=cwd, capture_output=True, timeout=120,
                          env=env)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


# -- latin-1 with a PEP 263 cookie ------------------------------------------------------------------

def test_latin1_positions(tmp_path):
    (tmp_path / "tasks.py").write_bytes(LATIN1.encode("latin-1"))
    found = diagnostics(tmp_path)
    # `accept_content=` follows `rédis` on its line: the column counts characters, not bytes
    line = LATIN1.splitlines()[5]
    assert ("tasks.py", 6, line.index("accept_content") + 1, "QLT501") in found
    assert ("tasks.py", 9, 1, "QLT101") in found
    assert len(found) == 2


def test_latin1_fix_reencodes_exactly(tmp_path):
    (tmp_path / "tasks.py").write_bytes(LATIN1.encode("latin-1"))
    new = fixed_bytes(tmp_path)["tasks.py"]
    assert new == LATIN1_FIXED.encode("latin-1")
    assert "Größe".encode("latin-1") in new and "Größe".encode("utf-8") not in new


def test_latin1_cli_fix(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_bytes(LATIN1.encode("latin-1"))
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.read_bytes() == LATIN1_FIXED.encode("latin-1")
    # and the diff of a latin-1 file shows text, not bytes
    path.write_bytes(LATIN1.encode("latin-1"))
    proc = run_cli(tmp_path, "check", "--diff", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 1
    assert "+def größe_ändern" not in proc.stdout.decode("utf-8")  # unchanged line is context
    assert " def größe_ändern(bild_id):" in proc.stdout.decode("utf-8")
    assert path.read_bytes() == LATIN1.encode("latin-1")


@pytest.mark.parametrize("cookie", [
    "#!/usr/bin/env python\n# -*- coding: iso-8859-1 -*-\n",
    "# vim: set fileencoding=latin-1 :\n",
    "# coding=cp1252\n",
])
def test_cookie_spellings(tmp_path, cookie):
    text = cookie + LATIN1.split("\n", 1)[1]
    (tmp_path / "tasks.py").write_bytes(text.encode("latin-1"))
    offset = cookie.count("\n") - 1
    found = diagnostics(tmp_path)
    assert ("tasks.py", 9 + offset, 1, "QLT101") in found
    new = fixed_bytes(tmp_path)["tasks.py"]
    expected = text.replace('accept_content=["json", "pickle"]', 'accept_content=["json"]').replace(
        "@app.task\n", "@app.task(time_limit=300, soft_time_limit=270)\n")
    assert new == expected.encode("latin-1")


# -- UTF-8 with a BOM -----------------------------------------------------------------------------

def test_bom_positions_and_fix(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_bytes(codecs.BOM_UTF8 + MULTILINE.encode("utf-8"))
    found = diagnostics(tmp_path)
    assert found == [("tasks.py", 4, 1, "QLT501"), ("tasks.py", 7, 1, "QLT101"), ("tasks.py", 15, 1, "QLT101")]

    new = fixed_bytes(tmp_path)["tasks.py"]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "tasks.py").write_bytes(MULTILINE.encode("utf-8"))
    expected = fixed_bytes(plain)["tasks.py"]
    assert expected != MULTILINE.encode("utf-8")
    assert new == codecs.BOM_UTF8 + expected
    assert new.count(codecs.BOM_UTF8) == 1


def test_bom_cli_fix(tmp_path):
    path = tmp_path / "tasks.py"
    original = codecs.BOM_UTF8 + MULTILINE.encode("utf-8")
    path.write_bytes(original)
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and not data[3:].startswith(codecs.BOM_UTF8)
    assert b'app.conf.accept_content = ["json"]' in data
    # a second run changes nothing
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0
    assert path.read_bytes() == data


def test_bom_with_cookie(tmp_path):
    text = "# -*- coding: utf-8 -*-\n" + MULTILINE
    (tmp_path / "tasks.py").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    found = diagnostics(tmp_path)
    assert ("tasks.py", 5, 1, "QLT501") in found
    assert fixed_bytes(tmp_path)["tasks.py"].startswith(codecs.BOM_UTF8 + b"# -*- coding: utf-8 -*-\n")


# -- CRLF ---------------------------------------------------------------------------------------------

def test_crlf_positions(tmp_path):
    (tmp_path / "tasks.py").write_bytes(MULTILINE.replace("\n", "\r\n").encode("utf-8"))
    found = diagnostics(tmp_path)
    assert found == [("tasks.py", 4, 1, "QLT501"), ("tasks.py", 7, 1, "QLT101"), ("tasks.py", 15, 1, "QLT101")]


def test_crlf_fix_adds_crlf_lines(tmp_path):
    """The multi-line decorator and the class-based task get new lines: they must end in CRLF."""
    lf_root = tmp_path / "lf"
    lf_root.mkdir()
    (lf_root / "tasks.py").write_bytes(MULTILINE.encode("utf-8"))
    lf_fixed = fixed_bytes(lf_root)["tasks.py"]
    assert lf_fixed.count(b"\n") > MULTILINE.count("\n")  # the fixes do add lines

    crlf_root = tmp_path / "crlf"
    crlf_root.mkdir()
    (crlf_root / "tasks.py").write_bytes(MULTILINE.replace("\n", "\r\n").encode("utf-8"))
    crlf_fixed = fixed_bytes(crlf_root)["tasks.py"]
    assert crlf_fixed.count(b"\n") == crlf_fixed.count(b"\r\n")
    assert b"\r\r" not in crlf_fixed
    assert crlf_fixed == lf_fixed.replace(b"\n", b"\r\n")


def test_crlf_cli_fix_and_second_run(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_bytes(MULTILINE.replace("\n", "\r\n").encode("utf-8"))
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0
    assert path.read_bytes() == data


def test_mixed_line_endings_keep_untouched_lines(tmp_path):
    lines = MULTILINE.splitlines(keepends=True)
    mixed = "".join(line.replace("\n", "\r\n") if i % 2 else line for i, line in enumerate(lines))
    (tmp_path / "tasks.py").write_bytes(mixed.encode("utf-8"))
    new = fixed_bytes(tmp_path)["tasks.py"].decode("utf-8")
    new_lines = new.splitlines(keepends=True)
    # every line the fixes do not edit is still there, byte for byte, in order
    untouched = [line for line in mixed.splitlines(keepends=True)
                 if "accept_content" not in line and "max_retries" not in line and "class Export" not in line]
    it = iter(new_lines)
    assert all(any(line == candidate for candidate in it) for line in untouched), new


# -- no final newline -----------------------------------------------------------------------------------

def test_no_trailing_newline(tmp_path):
    text = MULTILINE.replace('app.conf.accept_content = ["json", "pickle"]\n', "") + \
        'app.conf.accept_content = ["json", "pickle"]'
    assert not text.endswith("\n")
    (tmp_path / "tasks.py").write_bytes(text.encode("utf-8"))
    found = diagnostics(tmp_path)
    last_row = text.count("\n") + 1
    assert ("tasks.py", last_row, 1, "QLT501") in found
    new = fixed_bytes(tmp_path)["tasks.py"]
    assert new.endswith(b'app.conf.accept_content = ["json"]')
    assert new.startswith(b"from celery import Celery\n\napp = Celery")


def test_no_trailing_newline_class_task_at_end(tmp_path):
    text = 'from celery import Celery, Task\n\napp = Celery("proj")\n\n\nclass Export(Task):\n    def run(self):\n        return 1'
    (tmp_path / "tasks.py").write_bytes(text.encode("utf-8"))
    assert diagnostics(tmp_path, ["QLT101"]) == [("tasks.py", 6, 1, "QLT101")]
    new = fixed_bytes(tmp_path, ["QLT101"])["tasks.py"]
    assert new == (b'from celery import Celery, Task\n\napp = Celery("proj")\n\n\nclass Export(Task):\n'
                   b"    time_limit = 300\n    soft_time_limit = 270\n    def run(self):\n        return 1")


def test_no_trailing_newline_crlf_cli(tmp_path):
    text = MULTILINE.replace("\n", "\r\n").rstrip("\r\n")
    path = tmp_path / "tasks.py"
    path.write_bytes(text.encode("utf-8"))
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = path.read_bytes()
    assert data.endswith(b'        return "\xc3\xa9"')
    assert data.count(b"\n") == data.count(b"\r\n")


# -- odd but valid ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ending,bom", [("\n", False), ("\r\n", True), ("\r\n", False)])
def test_app_level_fix_keeps_line_endings_bom_and_missing_final_newline(tmp_path, ending, bom):
    """Without the siblings, both tasks lack a limit: one finding on the app, whose fix writes
    ``app.conf`` lines in the file's own line endings, after its last setting."""
    text = MULTILINE.replace("\n", ending).rstrip(ending)
    (tmp_path / "tasks.py").write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))
    outcome = fix(tmp_path, ["QLT101"], unsafe=True)
    new = outcome.fixed[str(tmp_path / "tasks.py")].raw
    added = f'app.conf.accept_content = ["json", "pickle"]{ending}app.conf.task_time_limit = 300{ending}' \
            f"app.conf.task_soft_time_limit = 270{ending}"
    assert new == (codecs.BOM_UTF8 if bom else b"") + text.replace(
        'app.conf.accept_content = ["json", "pickle"]' + ending, added).encode("utf-8")
    (tmp_path / "tasks.py").write_bytes(new)
    assert [d.code for d in make_linter(tmp_path, ["QLT101"]).lint()] == []


def test_cr_only_line_endings_do_not_crash(tmp_path):
    (tmp_path / "tasks.py").write_bytes(MULTILINE.replace("\n", "\r").encode("utf-8"))
    found = diagnostics(tmp_path)
    assert ("tasks.py", 7, 1, "QLT101") in found
    outcome = fix(tmp_path, ["QLT101", "QLT501"], unsafe=True)
    for new in outcome.fixed.values():
        assert b"\n" not in new.raw  # whatever was fixed kept the file's line endings


def test_non_ascii_identifiers_columns(tmp_path):
    text = ('from celery import Celery\n\nзадачи = Celery("proj")\n'
            'задачи.conf.update(брокер="x", accept_content=["pickle"])\n')
    (tmp_path / "tasks.py").write_bytes(text.encode("utf-8"))
    found = diagnostics(tmp_path, ["QLT501"])
    col = text.splitlines()[3].index("accept_content") + 1
    assert found == [("tasks.py", 4, col, "QLT501")]
    new = fixed_bytes(tmp_path, ["QLT501"])["tasks.py"]
    assert new == text.replace('["pickle"]', '["json"]').encode("utf-8")


def test_file_mode_kept_with_encoding(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_bytes(codecs.BOM_UTF8 + MULTILINE.replace("\n", "\r\n").encode("utf-8"))
    os.chmod(path, 0o600)
    proc = run_cli(tmp_path, "check", "--fix", "--unsafe-fixes", "--select", "QLT101,QLT501")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.read_bytes().startswith(codecs.BOM_UTF8)

from __future__ import annotations

from pathlib import Path

import pytest

from qlint.lint.noqa import Suppressions
from qlint.lint.source import SourceFile


def py(text: str) -> Suppressions:
    return Suppressions.for_python(SourceFile.from_text(Path("t.py"), text))


def yml(text: str) -> Suppressions:
    return Suppressions.for_yaml(SourceFile.from_text(Path("t.yaml"), text))


def span_text(text: str, supp: Suppressions, row: int) -> str:
    d = supp.directives[row]
    return text.encode("utf-8")[d.start:d.end].decode("utf-8")


# ------------------------------------------------------------------------- Python


def test_no_noqa_no_directives() -> None:
    s = py("x = 1  # a comment\n")
    assert not s.directives and not s.file_level
    assert not s.suppresses("QLT101", [1])
    assert not s


def test_blanket() -> None:
    s = py("x = 1\ny = 2  # noqa\n")
    assert s.directives[2].codes is None
    assert s.suppresses("QLT101", [2])
    assert s.suppresses("QLT999", [2])
    assert not s.suppresses("QLT101", [1])


@pytest.mark.parametrize("comment, codes", [
    ("# noqa: QLT101", ("QLT101",)),
    ("# noqa:QLT101", ("QLT101",)),
    ("# noqa: QLT101,QLT2", ("QLT101", "QLT2")),
    ("# noqa: QLT101, QLT2", ("QLT101", "QLT2")),
    ("# noqa: QLT101 QLT2", ("QLT101", "QLT2")),
    ("# noqa: QLT101,QLT2,", ("QLT101", "QLT2")),
    ("# NOQA: qlt101", ("QLT101",)),
    ("# NoQa:QLT101", ("QLT101",)),
    ("#noqa:QLT101", ("QLT101",)),
    ("# noqa: QLT101, see #12", ("QLT101",)),
    ("# type: ignore  # noqa: QLT101", ("QLT101",)),
])
def test_code_lists(comment: str, codes: tuple[str, ...]) -> None:
    s = py(f"x = 1  {comment}\n")
    assert s.directives[1].codes == codes


@pytest.mark.parametrize("comment", [
    "# noqa", "#noqa", "# NOQA", "#   noqa", "# noqa QLT101", "# noqa:  QLT101",
    "# noqa: QLT", "# noqa: fix later", "# noqa:", "# something # noqa",
])
def test_blanket_forms(comment: str) -> None:
    # flake8: no colon, a second space after it, or something that is not a code list
    # leave a blanket directive.
    s = py(f"x = 1  {comment}\n")
    assert s.directives[1].codes is None
    assert s.suppresses("QLT101", [1])


def test_codes_and_prefix_match() -> None:
    s = py("a = 1  # noqa: QLT101,QLT2\n")
    assert s.suppresses("QLT101", [1])
    assert s.suppresses("QLT201", [1])
    assert s.suppresses("QLT299", [1])
    assert not s.suppresses("QLT102", [1])
    assert not s.suppresses("QLT301", [1])


def test_case_insensitive_codes_and_finding() -> None:
    s = py("a = 1  # NOQA:qlt1\n")
    assert s.suppresses("QLT101", [1])
    assert s.suppresses("qlt102", [1])


def test_not_a_directive() -> None:
    for comment in ("# no qa", "# noq", "# flake8 is fine"):
        assert not py(f"x = 1  {comment}\n").directives


def test_string_literal_does_not_count() -> None:
    text = 'x = "# noqa"\ny = """\n# noqa\n"""\nz = f"{x} # noqa: QLT101"\n'
    s = py(text)
    assert s.directives == {}
    assert not s.suppresses("QLT101", [1, 2, 3, 4, 5])


def test_string_and_comment_on_one_line() -> None:
    text = 'x = "# noqa: QLT999"  # noqa: QLT101\n'
    s = py(text)
    assert s.directives[1].codes == ("QLT101",)
    assert span_text(text, s, 1) == "# noqa: QLT101"


def test_multiple_rows_statement() -> None:
    text = (
        "@app.task(\n"      # 1
        "    bind=True,\n"  # 2
        ")  # noqa: QLT101\n"  # 3
        "def f(): pass\n"   # 4
    )
    s = py(text)
    # the directive is on row 3 only (as in flake8, brackets do not widen it) ...
    assert not s.suppresses("QLT101", [1])
    # ... but a finding passing the rows of its statement is covered by it
    assert s.suppresses("QLT101", range(1, 4))
    assert not s.suppresses("QLT102", range(1, 4))
    assert not s.suppresses("QLT101", [4])


def test_multiline_string_widens_directive() -> None:
    text = 'x = """\nline\n"""  # noqa: QLT101\ny = 1\n'
    s = py(text)
    d = s.directives[3]
    assert (d.first_row, d.last_row) == (1, 3)
    assert s.suppresses("QLT101", [1])
    assert s.suppresses("QLT101", [2])
    assert not s.suppresses("QLT101", [4])


def test_backslash_continuation_widens_directive() -> None:
    s = py("x = 1 + \\\n    2  # noqa\n")
    assert s.suppresses("QLT101", [1])


def test_union_of_directives_in_a_statement() -> None:
    s = py("f(a,  # noqa: QLT101\n  b)  # noqa: QLT2\n")
    assert s.suppresses("QLT101", [1, 2])
    assert s.suppresses("QLT201", [1, 2])
    assert not s.suppresses("QLT301", [1, 2])


def test_span_covers_directive_bytes() -> None:
    text = "é = 1  # noqa: QLT101, QLT2  \n"
    s = py(text)
    assert span_text(text, s, 1) == "# noqa: QLT101, QLT2"
    text = "ü = 1  # NOQA   trailing words\n"
    s = py(text)
    assert span_text(text, s, 1) == "# NOQA"


def test_span_with_bom_and_crlf() -> None:
    raw = b"\xef\xbb\xbfx = 1\r\n# c\r\ny = 2  # noqa:QLT1\r\n"
    src = SourceFile.from_bytes(Path("t.py"), raw)
    s = Suppressions.for_python(src)
    d = s.directives[3]
    assert src.utf8[d.start:d.end] == b"# noqa:QLT1"
    assert src.row_of(d.start) == 3


def test_used_tracking() -> None:
    s = py("a = 1  # noqa: QLT101,QLT2,QLT3\nb = 2  # noqa\nc = 3  # noqa: QLT9\n")
    assert s.suppresses("QLT101", [1])
    assert s.suppresses("QLT205", [1])
    assert s.suppresses("QLT401", [2])
    assert s.directives[1].used == {"QLT101", "QLT2"}
    assert s.directives[1].unused_codes == ("QLT3",)
    assert s.directives[2].used == {"QLT401"}
    assert s.directives[2].unused_codes == ()
    assert s.directives[3].used == set()
    assert not s.suppresses("QLT101", [3])
    assert s.directives[3].used == set()


def test_used_marks_every_matching_directive_once() -> None:
    s = py("f(a,  # noqa\n  b)  # noqa: QLT1\n")
    assert s.suppresses("QLT101", [1, 2, 1])
    assert s.directives[1].used == {"QLT101"}
    assert s.directives[2].used == {"QLT1"}


def test_tokenize_failure_falls_back_to_lines() -> None:
    text = 'x = (1,\n  "# noqa"\ny = 2  # noqa: QLT101\n'  # unclosed bracket
    s = py(text)
    assert s.suppresses("QLT101", [3])
    assert span_text(text, s, 3) == "# noqa: QLT101"


def test_fallback_file_level() -> None:
    assert py("# qlint: noqa\nx = (\n").file_level


# -------------------------------------------------------------------- file level


@pytest.mark.parametrize("line", [
    "# qlint: noqa", "# flake8: noqa", "#flake8:noqa", "# QLINT: NOQA", "   # qlint: noqa",
    "# flake8= noqa", "# qlint: noqa because generated",
    # flake8 7.x exempts the whole file even when codes follow (NOQA_FILE is unanchored)
    "# flake8: noqa: QLT101",
])
def test_file_level(line: str) -> None:
    s = py(f"import os\n{line}\nx = 1\n")
    assert s.file_level
    assert s.suppresses("QLT101", [3])
    assert s.suppresses("QLT999", [])


def test_file_level_must_be_on_its_own_line() -> None:
    s = py("x = 1  # qlint: noqa\ny = 2  # flake8: noqa\n")
    assert not s.file_level
    assert not s.suppresses("QLT101", [1, 2])


def test_file_level_in_string_does_not_count() -> None:
    assert not py('"""\n# qlint: noqa\n"""\n').file_level


def test_qlint_file_level_codes() -> None:
    s = py("# qlint: noqa: QLT101, QLT2\nx = 1\n")
    assert not s.file_level
    assert s.file_codes == ("QLT101", "QLT2")
    assert s.suppresses("QLT101", [2])
    assert s.suppresses("QLT203", [2])
    assert not s.suppresses("QLT102", [2])


# -------------------------------------------------------------------------- YAML


def test_yaml_comments() -> None:
    text = (
        "spec:\n"                                        # 1
        "  command: celery worker  # noqa: QLT401\n"     # 2
        "  args: ['--pool', 'prefork'] # NOQA\n"         # 3
        "  note: 'it''s # noqa not a comment'\n"         # 4
        '  other: "quoted \\" # noqa"\n'                 # 5
        "  url: http://x#noqa\n"                         # 6
        "  # noqa: QLT7\n"                               # 7
        "  it's: value # noqa: QLT5\n"                   # 8
    )
    s = yml(text)
    assert sorted(s.directives) == [2, 3, 7, 8]
    assert s.directives[2].codes == ("QLT401",)
    assert s.directives[3].codes is None
    assert s.suppresses("QLT401", [2])
    assert not s.suppresses("QLT402", [2])
    assert s.suppresses("QLT999", [3])
    assert not s.suppresses("QLT101", [4, 5, 6])
    assert s.suppresses("QLT501", [8])
    assert span_text(text, s, 2) == "# noqa: QLT401"
    assert s.directives[2].used == {"QLT401"}


def test_yaml_file_level() -> None:
    assert yml("# qlint: noqa\nkind: Deployment\n").file_level
    assert not yml("kind: Deployment  # qlint: noqa\n").file_level
    assert not yml("# flake8: noqa\nkind: Deployment\n").file_level
    s = yml("# qlint: noqa: QLT4\nkind: Deployment\n")
    assert s.suppresses("QLT401", [2]) and not s.suppresses("QLT101", [2])


def test_yaml_without_noqa() -> None:
    s = yml("a: 1  # comment\n")
    assert not s and not s.suppresses("QLT101", [1])


def test_yaml_multibyte_span() -> None:
    text = "name: 'café' # noqa: QLT1\n"
    s = yml(text)
    assert span_text(text, s, 1) == "# noqa: QLT1"

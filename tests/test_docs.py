"""docs/: the generated pages match the rules and settings, and every relative link resolves."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qlint.cli import main as qlint_main
from qlint.lint.registry import all_rules
from qlint.settings import DEFAULT_EXCLUDES, OPTIONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_generated_docs_are_fresh():
    result = subprocess.run([sys.executable, "scripts/generate_docs.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr + "\nrun: python scripts/generate_docs.py"


@pytest.fixture
def tmp_docs(tmp_path, monkeypatch):
    """The generator pointed at an empty docs/ folder."""
    monkeypatch.setattr(gen, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(gen, "RULES", tmp_path / "docs" / "rules")
    return tmp_path / "docs"


def test_check_fails_on_missing_stale_and_extra_pages(tmp_docs, capsys):
    assert gen.main(["--check"]) == 1  # nothing written yet
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    capsys.readouterr()

    page = tmp_docs / "rules" / f"{all_rules()[0].code}.md"
    page.write_text(page.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    assert gen.main(["--check"]) == 1
    assert "stale: docs/rules/" in capsys.readouterr().out
    gen.main([])

    (tmp_docs / "configuration.md").unlink()
    assert gen.main(["--check"]) == 1
    assert "missing: docs/configuration.md" in capsys.readouterr().out
    gen.main([])

    (tmp_docs / "rules" / "QLT999.md").write_text("# a removed rule\n", encoding="utf-8")
    (tmp_docs / "old.md").write_text(gen.MARK + "\n# an old generated page\n", encoding="utf-8")
    (tmp_docs / "hand-written.md").write_text("# not generated\n", encoding="utf-8")
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "extra: docs/rules/QLT999.md" in out and "extra: docs/old.md" in out
    assert "hand-written" not in out
    gen.main([])  # removes the extra generated pages, keeps the hand-written one
    assert not (tmp_docs / "rules" / "QLT999.md").exists() and not (tmp_docs / "old.md").exists()
    assert (tmp_docs / "hand-written.md").exists()
    assert gen.main(["--check"]) == 0


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_page_starts_with_qlint_rule_output(rule, capsys):
    assert qlint_main(["rule", rule.code]) == 0
    printed = capsys.readouterr().out
    page = gen.rule_page(rule)
    assert page.startswith(printed)
    assert page.rstrip("\n").endswith(gen.MARK)
    if rule.INVALID:
        assert "## Examples" in page and "### Reported" in page
    if any(case.fixed is not None for case in rule.INVALID[:gen.MAX_EXAMPLES]):
        assert "Fixed (`qlint check --fix --unsafe-fixes`):" in page
    for option in gen.rule_options(rule):
        assert f"(../configuration.md#{option.key})" in page


def test_rules_index_lists_every_rule_by_family_and_framework():
    index = gen.rules_index(all_rules())
    by_family, by_framework = index.split("## By framework")
    for rule in all_rules():
        assert f"[{rule.code}]({rule.code}.md)" in by_family
        for framework in rule.frameworks:
            section = by_framework.split(f"### {framework}\n", 1)[1].split("\n### ", 1)[0]
            assert f"[{rule.code}]({rule.code}.md)" in section
    for family in gen.FAMILIES.values():
        assert f": {family}\n" in by_family


def test_configuration_page_covers_every_setting():
    page = gen.configuration_page()
    assert page.startswith(gen.MARK + "\n")
    for option in OPTIONS:
        assert f"### `{option.key}`" in page and option.doc in page and option.example in page
    for name in DEFAULT_EXCLUDES:
        assert f"`{name}`" in page
    for name in ("pyproject.toml", "qlint.toml", ".qlint.toml", "[tool.qlint]", "--config"):
        assert name in page


def _links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors, close enough for the headings used in docs/."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S),
                          re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_relative_links_resolve(page):
    for target in _links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)}: no heading for {target}"


def test_readme_rule_table_matches_the_rules():
    """README's table of rules: every rule, with its name, frameworks and fix, and nothing else."""
    import re

    from qlint.lint.registry import all_rules

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (QLT\d{3}) \|.*\|$", readme, flags=re.MULTILINE)
    table = {m.group(1): m.group(0) for m in re.finditer(r"^\| (QLT\d{3}) \|.*\|$", readme, flags=re.MULTILINE)}
    expected = {}
    for rule in all_rules():
        fix = "yes" if rule.fix_availability in ("Always", "Sometimes") else "-"
        frameworks = ", ".join(rule.frameworks) if rule.frameworks else "any"
        expected[rule.code] = f"| {rule.code} | {rule.name} | {frameworks} | {fix}{' (opt-in)' if rule.opt_in else ''} |"
    assert len(rows) == len(table)
    assert table == expected


def _readme_block(marker: str) -> tuple[str, str]:
    """The argument of ``<!-- marker: ARG -->`` in README.md and the fenced block under it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker}: (.+?) -->\n```[a-z]*\n(.*?)```\n", readme, re.DOTALL)
    assert match, f"README.md has no `<!-- {marker}: ... -->` block"
    return match.group(1), match.group(2)


def test_readme_example_output_is_a_real_run(tmp_path):
    """README's example output is what ``qlint check`` prints for README's example input."""
    name, code = _readme_block("example-input")
    command, shown = _readme_block("example-output")
    (tmp_path / ".git").mkdir()  # the example's project root
    target = tmp_path / name
    target.parent.mkdir(parents=True)
    target.write_text(code, encoding="utf-8")
    args = command.split()[1:]
    assert args[0] == "check"
    result = subprocess.run([sys.executable, "-m", "qlint", *args, "--no-cache"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 1, result.stderr
    assert result.stdout == shown, "README's example output is stale; replace it with:\n" + result.stdout



def _mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=root, capture_output=True, text=True)


def test_docs_site_builds_strict(tmp_path):
    result = _mkdocs_build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "rules" / "QLT101" / "index.html").is_file()


def test_docs_site_strict_build_fails_on_a_broken_link(tmp_path):
    """The strict build is a check: a page linking to a page that does not exist fails it."""
    import shutil

    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](missing.md).\n", encoding="utf-8")
    result = _mkdocs_build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stdout + result.stderr

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qlint.lint import discovery
from qlint.lint.discovery import IgnoreRules, classify, discover, is_excluded
from qlint.settings import Settings


def make(root: Path, *names: str, content: str = "") -> None:
    for name in names:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def rels(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make(tmp_path, "app/tasks.py", "app/stubs.pyi", "app/README.md", "deploy/worker.yaml",
         "deploy/beat.yml", "Procfile", "Procfile.dev")
    return tmp_path


def settings_for(root: Path, **kwargs) -> Settings:
    return Settings(root=root, **kwargs)


# ----------------------------------------------------------------------- classification


def test_classify(tmp_path: Path) -> None:
    make(tmp_path, "a.py", "b.pyi", "c.yaml", "d.yml", "Procfile", "Procfile.web", "e.txt",
         "f.PY")
    (tmp_path / "script").write_text("#!/usr/bin/env python3\nprint(1)\n")
    (tmp_path / "shell").write_text("#!/bin/sh\necho\n")
    (tmp_path / "script.sh").write_text("#!/usr/bin/env python3\n")
    (tmp_path / "nofirst").write_text("\n#!/usr/bin/python\n")
    expected = {"a.py": "python", "b.pyi": "python", "c.yaml": "yaml", "d.yml": "yaml",
                "Procfile": "procfile", "Procfile.web": "procfile", "e.txt": "other",
                "f.PY": "python", "script": "python", "shell": "other", "script.sh": "script",
                "nofirst": "other"}
    for name, kind in expected.items():
        assert classify(tmp_path / name) == kind, name


def test_classify_unreadable_extensionless_file_is_other(tmp_path: Path) -> None:
    assert classify(tmp_path / "missing") == "other"


def test_discover_classifies_and_sorts(tree: Path) -> None:
    (tree / "bin").mkdir()
    (tree / "bin" / "run").write_text("#!/usr/bin/python\n")
    found = discover([tree], settings_for(tree))
    assert rels(found.python, tree) == ["app/stubs.pyi", "app/tasks.py", "bin/run"]
    assert rels(found.yaml, tree) == ["deploy/beat.yml", "deploy/worker.yaml"]
    assert rels(found.procfiles, tree) == ["Procfile", "Procfile.dev"]
    assert found.other == []  # a walk collects only what qlint reads
    assert found.errors == []
    assert all(p.is_absolute() for p in found.python + found.yaml + found.procfiles)


def test_relative_paths_are_made_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    found = discover([Path("."), Path("app/tasks.py"), Path("./app")], settings_for(tree))
    assert found.python == [tree / "app/stubs.pyi", tree / "app/tasks.py"]


def test_explicit_other_file_is_reported_as_other(tree: Path) -> None:
    found = discover([tree / "app/README.md"], settings_for(tree))
    assert found.other == [tree / "app/README.md"]


# ---------------------------------------------------------------------------- excludes


@pytest.mark.parametrize("folder", [".git", ".venv", "node_modules", "build", "__pycache__",
                                    "venv", "dist", ".tox"])
def test_default_excludes(tmp_path: Path, folder: str) -> None:
    make(tmp_path, "keep.py", f"{folder}/skip.py", f"sub/{folder}/skip.py")
    found = discover([tmp_path], settings_for(tmp_path, respect_gitignore=False))
    assert rels(found.python, tmp_path) == ["keep.py"]


def test_user_exclude_replaces_defaults(tmp_path: Path) -> None:
    make(tmp_path, "keep.py", "build/kept.py", "generated/skip.py", "a/generated/skip.py")
    found = discover([tmp_path], settings_for(tmp_path, exclude=["generated"]))
    assert rels(found.python, tmp_path) == ["build/kept.py", "keep.py"]


def test_extend_exclude_adds_to_defaults(tmp_path: Path) -> None:
    make(tmp_path, "keep.py", "build/skip.py", "migrations/0001.py", "app/migrations/0002.py",
         "app/settings_local.py", "deploy/x.yaml")
    settings = settings_for(tmp_path, extend_exclude=["migrations/", "*_local.py", "/deploy"])
    found = discover([tmp_path], settings)
    assert rels(found.python, tmp_path) == ["keep.py"]
    assert found.yaml == []


def test_anchored_exclude_only_matches_at_root(tmp_path: Path) -> None:
    make(tmp_path, "deploy/a.yaml", "sub/deploy/b.yaml", "src/gen/c.py", "x/src/gen/d.py")
    settings = settings_for(tmp_path, extend_exclude=["/deploy", "src/gen"])
    found = discover([tmp_path], settings)
    assert rels(found.yaml, tmp_path) == ["sub/deploy/b.yaml"]
    assert rels(found.python, tmp_path) == ["x/src/gen/d.py"]


def test_exclude_negation(tmp_path: Path) -> None:
    make(tmp_path, "a_local.py", "keep_local.py", "b.py")
    settings = settings_for(tmp_path, exclude=["*_local.py", "!keep_local.py"])
    assert rels(discover([tmp_path], settings).python, tmp_path) == ["b.py", "keep_local.py"]


def test_exclude_dir_only_pattern_does_not_match_file(tmp_path: Path) -> None:
    make(tmp_path, "tasks/a.py", "other/tasks")
    (tmp_path / "other" / "tasks").write_text("#!/usr/bin/env python\n")
    found = discover([tmp_path], settings_for(tmp_path, exclude=["tasks/"]))
    assert rels(found.python, tmp_path) == ["other/tasks"]


def test_excludes_relative_to_settings_root_when_walking_a_subfolder(tmp_path: Path) -> None:
    make(tmp_path, "src/gen/a.py", "src/b.py")
    settings = settings_for(tmp_path, extend_exclude=["src/gen"])
    assert rels(discover([tmp_path / "src"], settings).python, tmp_path) == ["src/b.py"]


def test_walk_outside_root_uses_names_only(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    make(tmp_path, "elsewhere/build/a.py", "elsewhere/src/gen/b.py", "elsewhere/c.py")
    settings = settings_for(root, extend_exclude=["src/gen"])
    found = discover([tmp_path / "elsewhere"], settings)
    assert rels(found.python, tmp_path) == ["elsewhere/c.py", "elsewhere/src/gen/b.py"]


# ------------------------------------------------------------------ explicit paths


def test_explicit_excluded_file_is_linted(tmp_path: Path) -> None:
    make(tmp_path, "build/foo.py")
    found = discover([tmp_path / "build/foo.py"], settings_for(tmp_path))
    assert found.python == [tmp_path / "build/foo.py"]


def test_explicit_excluded_file_skipped_with_force_exclude(tmp_path: Path) -> None:
    make(tmp_path, "build/foo.py", "app/bar.py", "app/baz_local.py")
    settings = settings_for(tmp_path, extend_exclude=["*_local.py"])
    paths = [tmp_path / "build/foo.py", tmp_path / "app/bar.py", tmp_path / "app/baz_local.py"]
    found = discover(paths, settings, force_exclude=True)
    assert found.python == [tmp_path / "app/bar.py"]
    assert found.errors == []


def test_explicit_excluded_folder_is_walked_but_nested_excludes_apply(tmp_path: Path) -> None:
    make(tmp_path, "build/foo.py", "build/__pycache__/foo.py", "build/sub/build/x.py")
    found = discover([tmp_path / "build"], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["build/foo.py"]
    assert discover([tmp_path / "build"], settings_for(tmp_path), force_exclude=True).python == []


def test_force_exclude_never_excludes_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "build"  # a root whose own name is excluded
    make(root, "a.py")
    monkeypatch.chdir(root)
    found = discover([Path(".")], settings_for(root), force_exclude=True)
    assert found.python == [root / "a.py"]


def test_is_excluded(tmp_path: Path) -> None:
    make(tmp_path, "build/foo.py", "app/x.py", "app/node_modules/y.py", "app/m/0001.py")
    settings = settings_for(tmp_path, extend_exclude=["app/m/"])
    assert is_excluded(tmp_path / "build/foo.py", settings)
    assert is_excluded(tmp_path / "build", settings)
    assert is_excluded(tmp_path / "app/node_modules/y.py", settings)
    assert is_excluded(tmp_path / "app/m/0001.py", settings)
    assert not is_excluded(tmp_path / "app/x.py", settings)
    assert not is_excluded(tmp_path, settings)
    assert not is_excluded(tmp_path.parent, settings)
    # the stdin file name need not exist
    assert is_excluded(tmp_path / "build/not-there.py", settings)
    assert not is_excluded(tmp_path / "app/not-there.py", settings)
    # outside the root: the name alone
    assert is_excluded(tmp_path.parent / "elsewhere" / "build", settings_for(tmp_path / "app"))


def test_is_excluded_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "build/foo.py")
    monkeypatch.chdir(tmp_path)
    assert is_excluded(Path("build/foo.py"), settings_for(tmp_path))
    assert not is_excluded(Path("."), settings_for(tmp_path))


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    make(tmp_path, "a.py")
    found = discover([tmp_path / "nope.py", tmp_path / "a.py"], settings_for(tmp_path))
    assert found.errors == [(tmp_path / "nope.py", "No such file or directory")]
    assert found.python == [tmp_path / "a.py"]


def test_duplicates_are_removed(tmp_path: Path) -> None:
    make(tmp_path, "a/x.py")
    found = discover([tmp_path, tmp_path / "a", tmp_path / "a/x.py", tmp_path / "a/../a/x.py"],
                     settings_for(tmp_path))
    assert found.python == [tmp_path / "a/x.py"]


# ------------------------------------------------------------------------- gitignore


def test_gitignore_respected(tmp_path: Path) -> None:
    make(tmp_path, "keep.py", "secret.py", "gen/a.py", "logs/x.yaml")
    (tmp_path / ".gitignore").write_text("# comment\nsecret.py\ngen/\n*.yaml\n")
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["keep.py"]
    assert found.yaml == []
    found = discover([tmp_path], settings_for(tmp_path, respect_gitignore=False))
    assert rels(found.python, tmp_path) == ["gen/a.py", "keep.py", "secret.py"]


def test_nested_gitignore_applies_to_its_folder(tmp_path: Path) -> None:
    make(tmp_path, "a/skip.py", "a/keep.py", "a/deep/skip.py", "b/skip.py", "a/local.py")
    (tmp_path / ".gitignore").write_text("local.py\n")
    (tmp_path / "a" / ".gitignore").write_text("skip.py\n/keep_root_only.py\n")
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["a/keep.py", "b/skip.py"]


def test_nested_gitignore_negation_overrides_parent(tmp_path: Path) -> None:
    make(tmp_path, "a/x_gen.py", "a/y_gen.py", "b/x_gen.py")
    (tmp_path / ".gitignore").write_text("*_gen.py\n")
    (tmp_path / "a" / ".gitignore").write_text("!x_gen.py\n")
    assert rels(discover([tmp_path], settings_for(tmp_path)).python, tmp_path) == ["a/x_gen.py"]


def test_gitignore_anchored_pattern_is_relative_to_its_folder(tmp_path: Path) -> None:
    make(tmp_path, "a/gen/x.py", "a/b/gen/y.py", "gen/z.py")
    (tmp_path / "a" / ".gitignore").write_text("/gen\n")
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["a/b/gen/y.py", "gen/z.py"]


def test_root_gitignore_with_dot_star_does_not_exclude_the_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "app/tasks.py", ".hidden/x.py", ".hidden.py")
    (tmp_path / ".gitignore").write_text(".*\n")
    monkeypatch.chdir(tmp_path)
    for force in (False, True):
        found = discover([Path(".")], settings_for(tmp_path), force_exclude=force)
        assert rels(found.python, tmp_path) == ["app/tasks.py"]


def test_gitignore_ignoring_everything_does_not_exclude_explicit_root(tmp_path: Path) -> None:
    make(tmp_path, "sub/a.py", "sub/b/c.py")
    (tmp_path / "sub" / ".gitignore").write_text("*\n!*.py\n!*/\n")
    found = discover([tmp_path / "sub"], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["sub/a.py", "sub/b/c.py"]


def test_ancestor_gitignore_applies_inside_a_git_repo(tmp_path: Path) -> None:
    make(tmp_path, "src/gen/a.py", "src/b.py", "src/c.py", ".git/")
    (tmp_path / ".gitignore").write_text("src/gen/\n")
    (tmp_path / ".git" / "info").mkdir()
    (tmp_path / ".git" / "info" / "exclude").write_text("c.py\n")
    found = discover([tmp_path / "src"], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["src/b.py"]


def test_ancestor_gitignore_ignored_outside_a_git_repo(tmp_path: Path) -> None:
    make(tmp_path, "src/gen/a.py", "src/b.py")
    (tmp_path / ".gitignore").write_text("gen/\n")
    found = discover([tmp_path / "src"], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["src/b.py", "src/gen/a.py"]


def test_ignore_rules_match_git_semantics() -> None:
    rules = IgnoreRules(["build", "mig/", "/top", "a/b", "*.pyc", "!keep.pyc", "doc/**/gen",
                         "[Tt]mp", "x/*.txt"])
    cases = [
        ("build", "sub/build", False, True), ("mig", "mig", False, None),
        ("mig", "x/mig", True, True), ("top", "top", True, True), ("top", "s/top", True, None),
        ("b", "a/b", False, True), ("b", "s/a/b", False, None), ("x.pyc", "d/x.pyc", False, True),
        ("keep.pyc", "keep.pyc", False, False), ("gen", "doc/a/b/gen", True, True),
        ("Tmp", "Tmp", True, True), ("TMP", "TMP", True, None), ("a.txt", "x/a.txt", False, True),
        ("a.txt", "x/y/a.txt", False, None),
    ]
    for name, rel, is_dir, expected in cases:
        assert rules.decide(name, rel, is_dir) is expected, rel
    # a pattern matches the entry itself, not what lies below a matching folder
    assert rules.decide("x.py", "build/x.py", False) is None


# ------------------------------------------------------------- file-system trouble


def test_unreadable_directory_is_an_error_and_walk_continues(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "ok/a.py", "locked/b.py")
    locked = str(tmp_path / "locked")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["ok/a.py"]
    assert found.errors == [(tmp_path / "locked", "Permission denied")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permissions are not enforced for root")
def test_unreadable_directory_real_permissions(tmp_path: Path) -> None:
    make(tmp_path, "ok/a.py", "locked/b.py")
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        found = discover([tmp_path], settings_for(tmp_path))
    finally:
        locked.chmod(0o755)
    assert rels(found.python, tmp_path) == ["ok/a.py"]
    assert [p for p, _ in found.errors] == [locked]


def test_unreadable_gitignore_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "a.py")
    (tmp_path / ".gitignore").write_text("a.py\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if os.fspath(path).endswith(".gitignore"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["a.py"]


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    make(tmp_path, "a/x.py")
    try:
        (tmp_path / "a" / "loop").symlink_to(tmp_path, target_is_directory=True)
        (tmp_path / "a" / "self").symlink_to(tmp_path / "a" / "self")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported")
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["a/x.py"]
    assert found.errors == [(tmp_path / "a" / "loop", "symlink loop")]


def test_symlinked_folder_followed_once_real_path_wins(tmp_path: Path) -> None:
    make(tmp_path, "real/x.py", "outside/y.py")
    root = tmp_path / "root"
    root.mkdir()
    try:
        (root / "a_link").symlink_to(root / "z_real", target_is_directory=True)
        (root / "ext").symlink_to(tmp_path / "outside", target_is_directory=True)
        (root / "b.py").symlink_to(root / "z_real" / "x.py")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported")
    make(root, "z_real/x.py")
    found = discover([root], settings_for(root))
    assert rels(found.python, root) == ["ext/y.py", "z_real/x.py"]
    assert found.errors == []


def test_dangling_symlink_is_skipped(tmp_path: Path) -> None:
    make(tmp_path, "a.py")
    try:
        (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported")
    found = discover([tmp_path], settings_for(tmp_path))
    assert rels(found.python, tmp_path) == ["a.py"]
    assert found.errors == []


def test_cloudformation_templates_in_json_are_manifests_and_dotenv_examples_are_not():
    from qlint.lint.discovery import classify

    assert classify(Path("infra/template.json")) == "yaml"
    assert classify(Path("infra/orders.template.json")) == "yaml"
    assert classify(Path("stack.template")) == "yaml"
    assert classify(Path("server/.env.template")) == "other"
    assert classify(Path("package.json")) == "other"
    assert classify(Path("infra/main.tf")) == "terraform"

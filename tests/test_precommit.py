"""The pre-commit hooks in ``.pre-commit-hooks.yaml``, run by a real ``pre-commit``.

The hook repository is a snapshot of this working tree (tracked and untracked-but-not-ignored
files), committed in a temporary git repository, so the tests see uncommitted changes here and
work the same on a fresh clone in CI. pre-commit builds the hook's virtualenv with
``pip install .`` from that snapshot (PyPI must be reachable).

``pre-commit try-repo`` always uses a throwaway store, so each ``try-repo`` call builds its own
environment (two here). The other tests use a ``.pre-commit-config.yaml`` that points at the
same snapshot with a session-wide ``PRE_COMMIT_HOME``, so they share one more environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pre_commit", reason="pre-commit is not installed; `pip install -e '.[test]'` installs it")

ROOT = Path(__file__).resolve().parents[1]

# `git commit` without the user's global configuration getting in the way (signing, templates).
GIT_COMMIT = ["git", "-c", "user.name=qlint tests", "-c", "user.email=qlint@example.invalid",
              "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify"]

# Clean for every default rule: recycling (QLT401) and a failure sink (QLT301).
CELERY_PY = ('from celery import Celery\nfrom celery.signals import task_failure\n\napp = Celery("proj")\n'
             "app.conf.worker_max_tasks_per_child = 100\n\n\n@task_failure.connect\n"
             "def report(sender=None, **kwargs):\n    pass\n")
BAD_TASKS = "from proj.celery import app\n\n\n@app.task\ndef f():\n    return 1\n"
CLEAN_TASKS = ("from proj.celery import app\n\n\n@app.task(time_limit=60, soft_time_limit=50)\n"
               "def f():\n    return 1\n")
# Sized pool, memory limit and a grace period longer than the tasks (QLT402, QLT701, QLT702).
COMPOSE = ("services:\n  worker:\n    image: proj\n    command: celery -A proj worker --loglevel=info --concurrency=2\n"
           "    mem_limit: 512m\n    stop_grace_period: 90s\n")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _tree_files() -> list[str]:
    """The files of this working tree, as a fresh clone plus the local edits would have them."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
        return [name for name in out.split("\0") if name and (ROOT / name).is_file()]
    skip = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
            ".qlint_cache", ".ruff_cache"}
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
            and not p.name.endswith((".pyc", ".egg-info")) and ".egg-info" not in str(p)]


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> tuple[str, str]:
    """(path, commit) of a git repository holding this working tree's qlint and its hook manifest."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("qlint-hook-repo")
    for name in _tree_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert (repo / ".pre-commit-hooks.yaml").is_file()
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    subprocess.run([*GIT_COMMIT, "-m", "snapshot"], cwd=repo, check=True)
    return str(repo), _git("rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _project(path: Path, tasks: str, *, commit: bool = True) -> Path:
    """A small Celery project in a new git repository; ``proj/tasks.py`` staged or committed."""
    (path / "proj").mkdir(parents=True)
    (path / "proj" / "__init__.py").write_text("")
    (path / "proj" / "celery.py").write_text(CELERY_PY)
    (path / "docker-compose.yml").write_text(COMPOSE)
    _git("init", "-q", cwd=path)
    _git("add", "-A", cwd=path)
    subprocess.run([*GIT_COMMIT, "-m", "init"], cwd=path, check=True)
    (path / "proj" / "tasks.py").write_text(tasks)
    _git("add", "proj/tasks.py", cwd=path)
    if commit:
        subprocess.run([*GIT_COMMIT, "-m", "tasks"], cwd=path, check=True)
    return path


def _pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never", NO_COLOR="1")
    result = subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    print(result.stdout, result.stderr, sep="\n")  # shown by pytest when a test fails
    return result


def _config(path: Path, hook_repo: tuple[str, str], hooks: str) -> Path:
    repo, rev = hook_repo
    config = path / ".pre-commit-config.yaml"
    config.write_text(f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n{hooks}")
    return config


# -- `pre-commit try-repo` ------------------------------------------------------------------

def test_try_repo_qlint_fails_a_commit_with_findings(tmp_path, hook_repo):
    # No --files and no --all-files: the staged files, exactly what a commit would run on.
    project = _project(tmp_path / "project", BAD_TASKS, commit=False)
    result = _pre_commit("try-repo", hook_repo[0], "qlint", cwd=project, home=tmp_path / "home")
    assert result.returncode == 1
    assert "QLT101" in result.stdout
    assert "proj/tasks.py:4:1" in result.stdout
    assert "Failed" in result.stdout
    assert (project / "proj" / "tasks.py").read_text() == BAD_TASKS  # the check hook writes nothing


def test_try_repo_qlint_passes_a_clean_project(tmp_path, hook_repo):
    project = _project(tmp_path / "project", CLEAN_TASKS)
    result = _pre_commit("try-repo", hook_repo[0], "qlint", "--all-files", cwd=project,
                         home=tmp_path / "home")
    assert result.returncode == 0
    assert "qlint" in result.stdout and "Passed" in result.stdout
    assert "QLT" not in result.stdout


# -- a `.pre-commit-config.yaml`, as users write it (one shared environment) ----------------

def test_qlint_fix_with_unsafe_fixes_modifies_the_file(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path / "project", BAD_TASKS)
    config = _config(tmp_path, hook_repo, "      - id: qlint-fix\n        args: [--unsafe-fixes]\n")
    result = _pre_commit("run", "-c", str(config), "qlint-fix", "--files", "proj/tasks.py",
                         cwd=project, home=pre_commit_home)
    assert result.returncode == 1  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in result.stdout
    assert "1 fixed, 0 remaining" in result.stdout
    fixed = (project / "proj" / "tasks.py").read_text()
    assert "@app.task(time_limit=" in fixed and "soft_time_limit=" in fixed

    # The fixed file now passes both hooks.
    config = _config(tmp_path, hook_repo, "      - id: qlint\n      - id: qlint-fix\n        args: [--unsafe-fixes]\n")
    result = _pre_commit("run", "-c", str(config), "--files", "proj/tasks.py", cwd=project,
                         home=pre_commit_home)
    assert result.returncode == 0
    assert result.stdout.count("Passed") == 2


def test_qlint_fix_without_unsafe_fixes_only_reports(tmp_path, hook_repo, pre_commit_home):
    # `--fix` alone applies safe fixes only (ruff semantics), and every current fix is unsafe.
    project = _project(tmp_path / "project", BAD_TASKS)
    config = _config(tmp_path, hook_repo, "      - id: qlint-fix\n")
    result = _pre_commit("run", "-c", str(config), "qlint-fix", "--files", "proj/tasks.py",
                         cwd=project, home=pre_commit_home)
    assert result.returncode == 1
    assert "QLT101" in result.stdout
    assert "1 unsafe fix available with `--fix --unsafe-fixes`" in result.stdout
    assert "files were modified by this hook" not in result.stdout
    assert (project / "proj" / "tasks.py").read_text() == BAD_TASKS


def test_yaml_files_reach_the_hook_and_do_not_crash_it(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path / "project", CLEAN_TASKS)
    (project / "broken.yaml").write_text("a: [1,\n b: : :\n")
    config = _config(tmp_path, hook_repo, "      - id: qlint\n        verbose: true\n")
    result = _pre_commit("run", "-c", str(config), "qlint", "--files", "docker-compose.yml",
                         "broken.yaml", cwd=project, home=pre_commit_home)
    assert result.returncode == 0
    assert "Passed" in result.stdout
    assert "no files to check" not in result.stdout  # types_or: [python, yaml] selected them
    assert "All checks passed!" in result.stdout


def test_force_exclude_applies_the_project_excludes_to_passed_files(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path / "project", CLEAN_TASKS)
    (project / "legacy").mkdir()
    (project / "legacy" / "old_tasks.py").write_text(BAD_TASKS)
    (project / "qlint.toml").write_text('extend-exclude = ["legacy/"]\n')
    config = _config(tmp_path, hook_repo, "      - id: qlint\n")
    result = _pre_commit("run", "-c", str(config), "qlint", "--files", "legacy/old_tasks.py",
                         cwd=project, home=pre_commit_home)
    assert result.returncode == 0, "an excluded file named by pre-commit must not be linted"


def test_installed_hook_blocks_then_allows_a_git_commit(tmp_path, hook_repo, pre_commit_home):
    project = _project(tmp_path / "project", BAD_TASKS, commit=False)
    _config(project, hook_repo, "      - id: qlint\n")
    _git("add", ".pre-commit-config.yaml", cwd=project)
    assert _pre_commit("install", cwd=project, home=pre_commit_home).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=str(pre_commit_home), PRE_COMMIT_COLOR="never")
    commit = [c for c in GIT_COMMIT if c != "--no-verify"] + ["-m", "add tasks"]
    head = _git("rev-parse", "HEAD", cwd=project)

    blocked = subprocess.run(commit, cwd=project, env=env, capture_output=True, text=True)
    assert blocked.returncode != 0
    assert "QLT101" in blocked.stdout + blocked.stderr
    assert _git("rev-parse", "HEAD", cwd=project) == head

    (project / "proj" / "tasks.py").write_text(CLEAN_TASKS)
    _git("add", "proj/tasks.py", cwd=project)
    allowed = subprocess.run(commit, cwd=project, env=env, capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert _git("rev-parse", "HEAD", cwd=project) != head

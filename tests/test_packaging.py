"""The distribution as the package index would receive it: name, licence, classifiers, entry points."""

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import trove_classifiers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """An sdist and a wheel built from a copy of the sources (the build writes egg-info beside them)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "qlint", src / "qlint", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                             "--outdir", str(out), str(src)], capture_output=True, text=True,
                            env={**os.environ, "PIP_NO_INDEX": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _wheel(dist: Path) -> zipfile.ZipFile:
    [wheel] = dist.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _metadata(dist: Path):
    with _wheel(dist) as wheel:
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(wheel.read(name).decode("utf-8"))


def test_distribution_is_named_qlint_tasks_and_installs_the_qlint_command(dist):
    meta = _metadata(dist)
    assert meta["Name"] == "qlint-tasks"  # `qlint` on the index is an unrelated tool
    with _wheel(dist) as wheel:
        names = wheel.namelist()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = wheel.read(entry_points).decode("utf-8")
    assert "qlint = qlint.cli:main" in text
    assert "QLT = qlint.flake8_plugin:QlintChecker" in text
    assert "qlint/__init__.py" in names and "qlint/rules/qlt101_task_unbounded_runtime.py" in names


def test_wheel_and_sdist_carry_the_licence(dist):
    meta = _metadata(dist)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_bytes()
    with _wheel(dist) as wheel:
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert wheel.read(name) == licence
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        [member] = [m for m in tar.getmembers() if m.name.endswith("/LICENSE")]
        assert tar.extractfile(member).read() == licence


def test_classifiers_are_known_to_the_package_index(dist):
    meta = _metadata(dist)
    classifiers = meta.get_all("Classifier")
    assert classifiers and not [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert "Framework :: Celery" in classifiers and "Framework :: Flake8" in classifiers
    assert "celery" in meta["Keywords"].split(",")


def test_no_placeholder_address_anywhere():
    """No made-up home page, repository or organisation in what is shipped or documented."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    placeholders = ("your-org", "github.com/qlint/", "example.org/qlint", "qlint.example")
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".json", ".txt"} or name.startswith("tests/data/"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {p}" for p in placeholders if p in text and name != "tests/test_packaging.py"]
    assert not found

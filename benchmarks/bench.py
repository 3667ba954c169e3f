"""Time qlint against its peers on real code bases, side by side in one invocation.

    python benchmarks/bench.py /path/to/codebase [/path/to/another] [--runs 5] [--bin-dir DIR]
        [--generated 30000]

For every code base it runs, alternating (one run of each command per round, so that
machine noise hits every command alike):

- ``qlint check --no-cache``                    cold: every candidate file parsed
- ``qlint check`` with a warm cache             nothing changed since the last run
- ``qlint check`` with one file changed         the cache must re-parse that file only
- ``ruff check --no-cache --select ALL``        the reference for speed
- ``ruff check --no-cache --select E9,F``
- ``flake8`` (its own checks, qlint's plugin not loaded) and ``flake8 --select QLT``
  (the plugin; flake8 still runs its own checks underneath, whatever ``--select`` says),
  each with flake8's default ``--jobs`` and with ``--jobs 1``
- ``fixit lint`` with a rule equivalent to QLT101 (benchmarks/fixit_rules)

and prints each command's median wall time, the ratios qlint / peer, qlint's peak memory
(the process's maximum resident set, from ``wait4``) and how many files it parsed, and the
physical floor: reading every Python file plus compiling the ones qlint parses, in one process
(``benchmarks/floor.py``), so that the distance between qlint's cold run and it is visible.
Peers are looked up in ``--bin-dir`` (default: the folder of this Python), then on PATH;
a missing peer is reported as such, never silently skipped. A command running longer
than ``--timeout`` seconds is stopped and reported as timed out.

``--generated N`` also times ``qlint check`` and ``qlint check --fix --unsafe-fixes`` (cold,
each fix on a fresh copy) on a project whose one module declares N tasks with findings and
fixes, as code generated from a schema does (30,000 tasks make 5.5 MB).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    seconds: float
    max_rss_kb: int
    stderr: str
    timed_out: bool = False
    exit_code: int = 0


@dataclass
class Command:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    prepare: object = None  # callable run before each measured run (not timed)
    ok_codes: tuple[int, ...] = (0, 1)  # exit codes of a run that did its work (1: findings)
    # A pattern whose match in stderr means the run did no work (e.g. a peer that linted 0 files).
    no_work: str = ""
    samples: list[Sample] = field(default_factory=list)


def run_once(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Sample:
    # Every tool runs from bytecode, as after ``pip install`` (which compiles it): a machine that
    # sets PYTHONDONTWRITEBYTECODE would otherwise make an editable qlint compile its ~100 modules
    # on every run (0.1 s), while the peers' installed bytecode is read as usual.
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full_env.update(env)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = start + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status) if not timed_out else -9
    return Sample(elapsed, usage.ru_maxrss, stderr, timed_out, code)


def find_tool(name: str, bin_dir: Path | None) -> str | None:
    for directory in ([bin_dir] if bin_dir else []) + [Path(sys.executable).parent]:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def touch_one_file(codebase: Path):
    """A prepare step that changes one candidate file (a trailing comment) before the run."""
    # A file that defines tasks, so that qlint has to parse it again.
    task_file = re.compile(rb"@\w*\.?task\b|@shared_task\b|@\w*\.?actor\b|@job\b")  # Celery, Huey, Dramatiq, RQ
    # Not hidden or ignored, and production code by qlint's default classifier (a test module is
    # context only: qlint would not parse it again, and the run would measure nothing).
    sys.path.insert(0, str(ROOT))
    from qlint.lint.production import DEFAULT_NON_PRODUCTION, Classifier

    production = Classifier(DEFAULT_NON_PRODUCTION, codebase)
    candidates = (p for p in sorted(codebase.rglob("*.py"))
                  if not any(part.startswith(".") for part in p.relative_to(codebase).parts)
                  and production.is_production(p))
    target = next((p for p in candidates if task_file.search(p.read_bytes())), None)
    original = target.read_bytes() if target else b""
    counter = {"n": 0}

    def prepare() -> None:
        if target is None:
            return
        counter["n"] += 1
        # Unique per run, so that no earlier benchmark left this version in the cache.
        target.write_bytes(original + f"\n# qlint benchmark edit {counter['n']} {time.time_ns()}\n".encode())

    def restore() -> None:
        if target is not None:
            target.write_bytes(original)

    return prepare, restore, target


def commands_for(codebase: Path, bin_dir: Path | None) -> tuple[list[Command], list[str], object]:
    qlint = [sys.executable, "-m", "qlint", "check", "--exit-zero", "--output-format", "concise", "--verbose"]
    missing: list[str] = []
    prepare_change, restore, _ = touch_one_file(codebase)
    cmds = [
        Command("qlint cold (--no-cache)", [*qlint, "--no-cache", "."]),
        Command("qlint warm cache", [*qlint, "."]),
        Command("qlint warm, 1 file changed", [*qlint, "."], prepare=prepare_change),
    ]
    ruff = find_tool("ruff", bin_dir)
    if ruff:
        cmds.append(Command("ruff --select ALL", [ruff, "check", "--no-cache", "--select", "ALL", "--exit-zero",
                                                  "-q", "."]))
        cmds.append(Command("ruff --select E9,F", [ruff, "check", "--no-cache", "--select", "E9,F",
                                                   "--exit-zero", "-q", "."]))
    else:
        missing.append("ruff")
    flake8 = find_tool("flake8", bin_dir)
    if flake8:
        python = str(Path(flake8).resolve().parent / "python")
        own = [python if Path(python).exists() else sys.executable,
               str(ROOT / "benchmarks" / "flake8_without_qlint.py")]
        for jobs in ((), ("--jobs", "1")):
            suffix = " --jobs 1" if jobs else ""
            cmds.append(Command(f"flake8 own checks{suffix}", [*own, "--exit-zero", "-q", *jobs, "."]))
            cmds.append(Command(f"flake8 --select QLT{suffix}", [flake8, "--select", "QLT", "--exit-zero", "-q",
                                                                *jobs, "."]))
    else:
        missing.append("flake8")
    fixit = find_tool("fixit", bin_dir)
    if fixit:
        cmds.append(Command("fixit (QLT101-like rule)",
                            [fixit, "--rules", "benchmarks.fixit_rules.qlint_equivalent", "lint", "."],
                            env={"PYTHONPATH": str(ROOT)},
                            # A root .gitignore holding ``.*`` makes fixit lint nothing at all.
                            no_work=r"(?<!\d)0 files? (checked|clean)"))
    else:
        missing.append("fixit")
    return cmds, missing, restore


def parsed_files(stderr: str) -> str:
    match = re.search(r"qlint: \d+ Python files? checked.*", stderr)  # not the ``skipped`` notes above it
    return match.group(0) if match else ""


def bench(codebase: Path, runs: int, bin_dir: Path | None, timeout: float) -> str:
    cmds, missing, restore = commands_for(codebase, bin_dir)
    # Prime the cache once so that "warm" means warm.
    run_once(cmds[1].argv, codebase, cmds[1].env, timeout)
    try:
        for _ in range(runs):
            for cmd in cmds:
                if cmd.samples and cmd.samples[-1].timed_out:
                    continue  # one time-out is enough to know
                if callable(cmd.prepare):
                    cmd.prepare()
                cmd.samples.append(run_once(cmd.argv, codebase, cmd.env, timeout))
    finally:
        restore()
    files = sum(1 for _ in codebase.rglob("*.py"))
    lines = [f"### {codebase.name} ({files} Python files)", "",
             "| command | median s | runs | peak RSS MB | note |", "|---|---|---|---|---|"]
    medians: dict[str, float] = {}
    for cmd in cmds:
        idle = [s for s in cmd.samples if cmd.no_work and re.search(cmd.no_work, s.stderr)]
        if idle:
            lines.append(f"| {cmd.name} | did no work ({re.search(cmd.no_work, idle[-1].stderr).group(0)}): "
                         f"not comparable | {len(cmd.samples)} | | |")
            continue
        failed = [s for s in cmd.samples if not s.timed_out and s.exit_code not in cmd.ok_codes]
        if failed:
            # A tool that stopped on an error did not do the work: its time means nothing.
            last = (failed[-1].stderr.strip().splitlines() or ["(no message)"])[-1][:120]
            lines.append(f"| {cmd.name} | failed (exit {failed[-1].exit_code}: {last}) | {len(cmd.samples)} | | |")
            continue
        times = [s.seconds for s in cmd.samples if not s.timed_out]
        if not times:
            lines.append(f"| {cmd.name} | timed out (> {timeout:.0f} s) | {len(cmd.samples)} | | |")
            continue
        medians[cmd.name] = statistics.median(times)
        rss = max(s.max_rss_kb for s in cmd.samples) / 1024
        note = parsed_files(cmd.samples[-1].stderr) if cmd.name.startswith("qlint") else ""
        lines.append(f"| {cmd.name} | {medians[cmd.name]:.2f} | {len(times)} | {rss:.0f} | {note} |")
    lines.append("")
    for mine in ("qlint cold (--no-cache)", "qlint warm cache", "qlint warm, 1 file changed"):
        if mine not in medians:
            continue
        ratios = [f"{mine} / {peer} = {medians[mine] / medians[peer]:.2f}"
                  for peer in medians if not peer.startswith(("qlint", "flake8 --select QLT")) and medians[peer] > 0]
        lines.extend(f"- {r}" for r in ratios)
    for suffix in ("", " --jobs 1"):
        plugin, own = medians.get(f"flake8 --select QLT{suffix}"), medians.get(f"flake8 own checks{suffix}")
        if plugin and own:
            lines.append(f"- flake8 --select QLT{suffix} / flake8 own checks{suffix} = {plugin / own:.2f}")
    floor = physical_floor(codebase, timeout)
    if floor is not None:
        seconds, text = floor
        cold = medians.get("qlint cold (--no-cache)")
        ratio = f"; qlint cold / floor = {cold / seconds:.2f}" if cold and seconds > 0 else ""
        lines.append(f"- physical floor ({text}, one process: benchmarks/floor.py) = {seconds:.2f} s{ratio}")
    if missing:
        lines.append(f"- not measured (not installed): {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def physical_floor(codebase: Path, timeout: float) -> tuple[float, str] | None:
    """Reading every discovered Python file and compiling the ones qlint parses: what no linter
    of qlint's design can skip (timed inside benchmarks/floor.py, after it asked qlint which files)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "floor.py"), str(codebase)], cwd=codebase,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    match = re.search(r"floor: (read \d+ files, compile \d+): ([\d.]+) s", proc.stdout)
    return (float(match.group(2)), match.group(1)) if match else None


GENERATED_TASK = """
@app.task(bind=True, max_retries=None)
def task_{i}(self, payload):
    try:
        return payload['value'] + {i}
    except KeyError as exc:
        raise self.retry(exc=exc)

"""


def write_generated(folder: Path, tasks: int) -> Path:
    """A project whose one module declares ``tasks`` Celery tasks (5.5 MB for 30,000), each with
    findings and fixes: the shape of code generated from a schema."""
    proj = folder / "proj"
    proj.mkdir(parents=True)
    (proj / "__init__.py").write_text("")
    (proj / "celery.py").write_text("from celery import Celery\napp = Celery('proj')\n")
    body = "".join(GENERATED_TASK.format(i=i) for i in range(tasks))
    (proj / "generated.py").write_text("from proj.celery import app\n" + body)
    return folder


def bench_generated(tasks: int, runs: int, timeout: float) -> str:
    """``qlint check`` and ``--fix --unsafe-fixes`` on a generated module, cold, each fix run on a
    fresh copy."""
    import tempfile

    qlint = [sys.executable, "-m", "qlint", "check", "--no-cache", "--exit-zero", "--output-format", "concise"]
    with tempfile.TemporaryDirectory() as tmp:
        source = write_generated(Path(tmp) / "source", tasks)
        size = (source / "proj" / "generated.py").stat().st_size
        target = Path(tmp) / "copy"

        def fresh() -> None:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)

        cmds = [Command("qlint check", [*qlint, "."], prepare=fresh),
                Command("qlint check --fix --unsafe-fixes", [*qlint, "--fix", "--unsafe-fixes", "."], prepare=fresh)]
        for _ in range(runs):
            for cmd in cmds:
                cmd.prepare()
                cmd.samples.append(run_once(cmd.argv, target, cmd.env, timeout))
    lines = [f"### a generated module: {tasks} tasks, {size / 1e6:.1f} MB", "",
             "| command | median s | runs | peak RSS MB |", "|---|---|---|---|"]
    for cmd in cmds:
        times = [x.seconds for x in cmd.samples if not x.timed_out]
        if not times:
            lines.append(f"| {cmd.name} | timed out (> {timeout:.0f} s) | {len(cmd.samples)} | |")
            continue
        rss = max(x.max_rss_kb for x in cmd.samples) / 1024
        lines.append(f"| {cmd.name} | {statistics.median(times):.2f} | {len(times)} | {rss:.0f} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("codebases", nargs="*", type=Path)
    parser.add_argument("--generated", type=int, default=0, metavar="TASKS",
                        help="also time a generated module with this many tasks (check and --fix)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bin-dir", type=Path, default=None, help="where ruff, flake8 and fixit are installed")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    report = [f"# qlint benchmark, {time.strftime('%Y-%m-%d')}", "", f"Machine: {machine()}", "",
              "Every tool runs from bytecode (PYTHONDONTWRITEBYTECODE is cleared for the runs), alternating, "
              f"{args.runs} runs each; medians.", ""]
    for codebase in args.codebases:
        print(f"benchmarking {codebase} ...", file=sys.stderr)
        report.append(bench(codebase.resolve(), args.runs, args.bin_dir, args.timeout))
    if args.generated:
        print(f"benchmarking a generated module of {args.generated} tasks ...", file=sys.stderr)
        report.append(bench_generated(args.generated, args.runs, args.timeout))
    text = "\n".join(report)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`realprof record --follow-children`: Python child processes in the profile.

Real runs (real SIGPROF, real processes): a `multiprocessing.Pool` of 2 workers under the
fork and forkserver start methods, ending normally (close/join: workers end by
os._exit) and by `terminate()` (SIGTERM), and a `subprocess.run([sys.executable, ...])`
child. Without the option the summary says children ran unprofiled and no child sample
is in the profile.
"""

from __future__ import annotations

import gzip
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from contract.pprof import PprofProfile
from tests.test_realprof_cli import run_realprof

pytestmark = pytest.mark.real

POOL = textwrap.dedent(
    """
    import multiprocessing, os, sys, time

    def meet(barrier):
        barrier.wait()  # both workers exist before either takes a task

    def child_hot(seconds):
        end = time.thread_time() + seconds
        x = 0
        while time.thread_time() < end:
            x += 1
        return os.getpid()

    if __name__ == "__main__":
        method, ending = sys.argv[1], sys.argv[2]
        ctx = multiprocessing.get_context(method)
        pool = ctx.Pool(2, initializer=meet, initargs=(ctx.Barrier(2),))
        pids = pool.map(child_hot, [0.25] * 4, chunksize=1)
        print("WORKER PIDS", *sorted(set(pids)))
        if ending == "terminate":
            pool.terminate()
        else:
            pool.close()
        pool.join()
    """
)

SUBPROCESS = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    child = Path(__file__).with_name("child.py")
    subprocess.run([sys.executable, str(child)], check=True)
    """
)

CHILD = textwrap.dedent(
    """
    import time

    def sub_hot(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    sub_hot(0.4)
    import sitecustomize
    print("SITECUSTOMIZE=" + getattr(sitecustomize, "MARK", "ours"))
    """
)


def samples_by_process(path: Path, function: str) -> Counter[str]:
    """Samples whose stack holds `function` (its bare name: pprof's system_name; the
    name is module-qualified), by the pprof label `process` ("" if none)."""
    message = PprofProfile()
    message.ParseFromString(gzip.decompress(path.read_bytes()))
    strings = list(message.string_table)
    names = {f.id: strings[f.system_name] for f in message.function}
    holds = {
        loc.id
        for loc in message.location
        if any(names[ln.function_id] == function for ln in loc.line)
    }
    found: Counter[str] = Counter()
    for sample in message.sample:
        if holds.intersection(sample.location_id):
            labels = {strings[lb.key]: strings[lb.str] for lb in sample.label}
            found[labels.get("process", "")] += sample.value[0]
    return found


def record(
    tmp_path: Path, program: str, *args: str, follow: bool = True, extra_path: Path | None = None
):
    (tmp_path / "prog.py").write_text(program)
    (tmp_path / "child.py").write_text(CHILD)
    out = tmp_path / "out.pb.gz"
    flags = ["--follow-children"] if follow else []
    result = run_realprof(
        "record",
        "--hz",
        "200",
        *flags,
        "-o",
        str(out),
        "prog.py",
        *args,
        cwd=tmp_path,
        extra_path=extra_path,
    )
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.mark.parametrize(
    ("method", "ending"),
    [
        ("fork", "normal"),
        ("fork", "terminate"),
        ("forkserver", "normal"),  # the default start method from Python 3.14
        ("forkserver", "terminate"),
        ("spawn", "normal"),
    ],
)
def test_pool_workers_are_in_the_profile(tmp_path: Path, method: str, ending: str) -> None:
    result, out = record(tmp_path, POOL, method, ending)
    found = samples_by_process(out, "child_hot")
    worker = {"fork": "Fork", "forkserver": "ForkServer", "spawn": "Spawn"}[method] + "PoolWorker"
    pattern = re.compile(rf"pid \d+ \({worker}-\d+\)")
    assert found and all(pattern.fullmatch(label) for label in found), (found, result.stderr)
    # Both workers did work (the barrier makes them both take tasks), and each is there.
    worker_pids = re.search(r"WORKER PIDS ([\d ]+)", result.stdout)[1].split()
    assert len(worker_pids) == 2, result.stdout
    assert sorted(re.search(r"pid (\d+)", label)[1] for label in found) == sorted(worker_pids)
    # 1 s of worker CPU at 200 Hz is ~200 samples; a SIGTERM may cost the last ~0.2 s
    # of each worker, and a loaded machine more: a floor far below either.
    assert sum(found.values()) >= 40, (found, result.stderr)
    assert "Python child processes followed" in result.stderr, result.stderr


def test_subprocess_child_is_in_the_profile(tmp_path: Path) -> None:
    """...and the environment's own sitecustomize still runs in it, after ours."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text('MARK = "the user\'s"\n')
    result, out = record(tmp_path, SUBPROCESS, extra_path=site)
    assert "SITECUSTOMIZE=the user's" in result.stdout, (result.stdout, result.stderr)
    found = samples_by_process(out, "sub_hot")
    assert list(found) and all(re.fullmatch(r"pid \d+ \(child\.py\)", k) for k in found), (
        found,
        result.stderr,
    )
    assert sum(found.values()) >= 20, (found, result.stderr)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_without_the_option_children_are_noted_and_absent(tmp_path: Path, method: str) -> None:
    result, out = record(tmp_path, POOL, method, "normal", follow=False)
    assert samples_by_process(out, "child_hot") == Counter(), result.stderr
    notes = [line for line in result.stderr.splitlines() if "ran unprofiled" in line]
    assert len(notes) == 1 and "--follow-children" in notes[0], result.stderr


PREEXEC = textwrap.dedent(
    """
    import subprocess
    loop = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
    subprocess.run(["sh", "-c", loop], preexec_fn=lambda: None, check=True)
    """
)


def test_a_preexec_fn_child_is_not_sampled_before_its_exec(tmp_path: Path) -> None:
    """The at-fork hooks run in a preexec_fn child, which then execs from C: a sampler
    started there would leave ITIMER_PROF armed and SIGPROF would kill the shell."""
    (tmp_path / "prog.py").write_text(PREEXEC)
    result = run_realprof(
        "record",
        "--timer",
        "process",
        "--follow-children",
        "-o",
        "out.folded",
        "prog.py",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr

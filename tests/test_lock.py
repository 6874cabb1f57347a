"""lab.record.lock and lab.record.scratch: one run per folder, a holder that can be named, and nothing left behind by a kill.

The other process is real (a subprocess) and is really killed (SIGKILL): that is what a crashed run does.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from lab import checkpoint
from lab.record import lock, scratch

HOLDER = """
import sys, time
from lab.record import lock
with lock.hold(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(folder, purpose="training"):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), purpose], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def stop(child):
    child.kill()
    child.wait()


def wait_line(stream, text: str) -> str:
    """Read lines until one contains `text` (the process says it is waiting); the line."""
    for line in stream:
        if text in line:
            return line
    raise AssertionError(f"the process ended without saying {text!r}")


def test_a_second_holder_fails_at_once_naming_the_first(tmp_path):
    child = start_holder(tmp_path, "rendering")
    try:
        with pytest.raises(lock.Busy) as e:
            with lock.hold(tmp_path, "rendering", wait=False):
                pass
        assert f"pid {child.pid}" in str(e.value) and "rendering" in str(e.value)
        assert f"kill {child.pid}" in str(e.value)
    finally:
        stop(child)
    with lock.hold(tmp_path, "rendering", wait=False):       # control: free once the holder is gone
        pass


def test_a_killed_holder_releases_the_lock_to_a_waiting_run(tmp_path):
    child = start_holder(tmp_path)
    waiter = subprocess.Popen([sys.executable, "-c", "import sys; from lab.record import lock\n"
                               "with lock.hold(sys.argv[1], 'training'):\n    print('got it', flush=True)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        said = wait_line(waiter.stdout, "waiting for")
        assert waiter.poll() is None, "the second run did not wait"
    finally:
        os.kill(child.pid, signal.SIGKILL)               # a crash: no cleanup code runs
        child.wait()
    out, _ = waiter.communicate(timeout=30)
    assert out.strip() == "got it"
    assert f"waiting for {tmp_path}: in use by pid {child.pid}" in said


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with lock.hold(tmp_path, "measuring"):
        with lock.hold(tmp_path, "training", wait=False):
            pass
        with lock.hold(tmp_path, "training", wait=False):   # the inner release did not release the outer hold
            pass


def test_a_training_run_waits_for_the_run_folder_and_names_its_holder(tmp_path):
    folder = tmp_path / "run"
    child = start_holder(folder)
    code = ("import sys; from lab import data, get_profile, models, train\n"
            "p = get_profile('smoke').but(train_size=16, eval_size=16, epochs=1)\n"      # one step is enough
            "m, t = models.load(p.model, seed=p.seed)\n"
            "train.train(m, t, data.load_splits(p), p, checkpoint_dir=sys.argv[1], progress=False)\n"
            "print('trained', flush=True)")
    second = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        said = wait_line(second.stdout, "waiting for")
        assert f"in use by pid {child.pid} " in said
        time.sleep(1)
        assert second.poll() is None and checkpoint.latest(folder) is None, "it trained into a locked folder"
    finally:
        stop(child)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "trained" in out and checkpoint.latest(folder) is not None


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_prune_removes_dead_writers_leftovers_but_not_a_live_runs_write(tmp_path):
    live = tmp_path / scratch.owned_name("step-000099")            # this process: alive, as another run would be
    dead = tmp_path / scratch.owned_name("step-000098").replace(f".{os.getpid()}@", f".{dead_pid()}@")
    live.mkdir()
    dead.mkdir()
    checkpoint.prune(tmp_path)
    assert live.is_dir(), "prune deleted a live run's write in progress"
    assert not dead.exists(), "prune left a killed run's temporary folder"


KILLED_IN_SCRATCH = """
import os, signal, sys
from lab.record import scratch
with scratch.directory("checks") as d:
    (d / "kernel.json").write_text("{}")
    print(d, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_next_run_clears_the_scratch_folder_of_a_killed_one(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.run([sys.executable, "-c", KILLED_IN_SCRATCH], env=env, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL
    left = child.stdout.strip()
    assert os.path.isdir(left) and os.stat(left).st_mode & 0o777 == 0o700      # private: it may hold a key
    subprocess.run([sys.executable, "-c", "from lab.record import scratch\nwith scratch.directory('checks'): pass"],
                   env=env, check=True)
    assert list(tmp_path.iterdir()) == []


PARENT = """
from lab.record import scratch
child = scratch.python("import time; time.sleep(120)")
print(child.pid, flush=True)
import time; time.sleep(120)
"""


def test_a_helper_process_dies_with_the_process_that_started_it():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    helper = int(parent.stdout.readline())
    time.sleep(2)                                          # the helper is past its start-up
    assert scratch.alive(helper)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while scratch.alive(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = not scratch.alive(helper)
    if not gone:
        os.kill(helper, signal.SIGKILL)
    assert gone, "the helper outlived its parent"


def test_the_lock_file_is_the_one_the_readme_names_and_git_ignores():
    from pathlib import Path
    root = Path(lock.__file__).resolve().parents[2]
    assert f"`{lock.LOCK_FILE}`" in (root / "README.md").read_text()
    assert lock.LOCK_FILE in (root / ".gitignore").read_text().split()

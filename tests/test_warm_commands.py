"""The warm interpreter the suite runs commands through (tests/warm_commands.py) behaves as separate processes do:
exit status and streams, a signal to the client reaches the command, kill -9 ends the command, the thread count a
command asks for, unbuffered output, what it starts with sys.executable served too, and an environment the server
cannot honour run by the real program."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_status_streams_and_what_the_command_sees(warm):
    code = ("import os, sys, torch; print(sys.executable, torch.get_num_threads(), os.getcwd()); "
            "print('to stderr', file=sys.stderr); sys.exit(3)")
    for threads in ("1", "2"):
        done = subprocess.run([warm.python, "-c", code], capture_output=True, text=True, cwd="/tmp",
                              env={**os.environ, "OMP_NUM_THREADS": threads}, timeout=60)
        assert done.returncode == 3 and done.stderr == "to stderr\n"
        assert done.stdout.split() == [warm.python, threads, "/tmp"]
    nested = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', 'import sys; print(sys.executable)']).returncode)"
    done = subprocess.run([warm.python, "-c", nested], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == warm.python  # served as well
    done = subprocess.run([warm.r2r, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: r2r")
    done = subprocess.run([warm.python, "-m", "synfashion.cli", "nope"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = subprocess.run([warm.python, "-c", "raise ValueError('boom')"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ValueError: boom" in done.stderr


def test_what_a_fresh_interpreter_has_of_its_own(warm, tmp_path):
    """Its own __main__ (pickle finds a class defined by -c), TMPDIR, numpy's random state."""
    code = ("import pickle, sys, tempfile, numpy\nclass A: pass\npickle.dumps(A())\n"
            "print(tempfile.gettempdir(), numpy.random.randint(1 << 30), __spec__)")
    runs = [subprocess.run([warm.python, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "TMPDIR": str(tmp_path)}) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    (tmp, a, spec), (_, b, _) = (r.stdout.split() for r in runs)
    assert tmp == str(tmp_path) and a != b and spec == "None"


def test_a_client_gone_mid_request_leaves_the_server_serving(warm):
    import socket

    for _ in range(2):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(warm.servers[0].sock)
        s.close()  # nothing sent
    done = subprocess.run([warm.python, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == warm.python  # still served
    assert "request dropped" in warm.servers[0].log.read_text()


def test_an_environment_read_at_import_runs_the_real_program(warm):
    code = "import sys; print(sys.executable)"
    no_threads = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # a fresh process picks its own
    for env in ({**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"}, {**os.environ, "PYTHONWARNINGS": "error"},
                {**os.environ, "OMP_NUM_THREADS": "x"}, {**os.environ, "NO_COLOR": os.environ.get("NO_COLOR", "") + "1"}, no_threads):
        done = subprocess.run([warm.python, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == sys.executable
    done = subprocess.run([warm.python, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == sys.executable  # an interpreter flag it does not set up


def test_signals_reach_the_command_and_kill_9_ends_it(warm):
    sleeper = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    proc = subprocess.Popen([warm.python, "-c", sleeper], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())  # flushed at once: output is not held back
    assert pid != proc.pid
    proc.send_signal(signal.SIGINT)  # Ctrl-C: a KeyboardInterrupt in the command, which ends it by SIGINT
    assert proc.wait(30) == -signal.SIGINT and "KeyboardInterrupt" in proc.stderr.read()
    assert not _alive(pid)

    proc = subprocess.Popen([warm.python, "-c", sleeper], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert warm.kill(proc) == -signal.SIGKILL and not _alive(pid)  # the command itself, then its client

    proc = subprocess.Popen([warm.python, "-c", sleeper], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    proc.kill()  # the client killed outright: its command follows
    proc.wait(30)
    end = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    assert not _alive(pid)


@pytest.mark.parametrize("how", [["-u"], []])
def test_unbuffered_output_arrives_while_the_command_runs(warm, how):
    env = {**os.environ, **({} if how else {"PYTHONUNBUFFERED": "1"})}
    proc = subprocess.Popen([warm.python, *how, "-c", "import time; print('early'); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "early\n"
    finally:
        warm.kill(proc)

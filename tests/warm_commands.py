"""A warm Python for tests that run commands as separate processes (the `warm` fixture in tests/conftest.py, and
tests/test_readme_path.py).

Why: every `r2r`, `synfashion` or `python` a test starts is a new interpreter that imports torch, diffusers,
transformers and datasets again: 1.5-5 s of CPU each, about 90 of them in the suite, on a 2-core machine. Here one
process imports them once (`serve`), and `r2r`, `synfashion` and `python` in a folder of small clients
(`install_clients`) hand this process their arguments, working folder, environment and standard streams (the file
descriptors themselves, over a Unix socket); it forks, and the child runs the command exactly as the interpreter
would (the entry point's `main()`, `python -m`, a script, `-c`, `-`), writing straight to the client's streams. Each
command is still a process of its own: its own pid, exit status, signals, files and process group.

What the client does as the command's stand-in:
- its exit status is the command's; a command killed by a signal kills the client with the same signal;
- SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 sent to the client are sent on to the command (Ctrl-C tests);
- a client killed outright (SIGKILL) takes its command with it: the command's process watches the connection and
  kills itself with SIGKILL when the client is gone (kill -9 tests);
- in the command, `sys.executable` is the client `python`, so what it starts with `sys.executable` (torchrun's
  ranks, gpu_check's steps, a benchmark's `r2r evaluate`) is served as well.

What a fresh process would see differently is refused, never served (the client then `exec`s the real program):
variables that the libraries or the interpreter read when they are imported or start (IMPORT_TIME: HF_*,
HUGGING*, TRANSFORMERS_*, DIFFUSERS_*, thread pools, allocator, colour, PYTHON*) must have the server's values,
except those the child sets up itself: OMP_NUM_THREADS / MKL_NUM_THREADS (torch.set_num_threads; present in both or
in neither), PYTHONUNBUFFERED and -u (unbuffered streams), PYTHONDONTWRITEBYTECODE and -B, and a PYTHONPATH naming
only folders the server already imports from. Any other interpreter flag, and a command on a terminal (the consoles
that modules made at import were made for the server's log file), fall back too. The child also gets what a new
interpreter has of its own: a `__main__` module (for -c and -), numpy's random state from fresh entropy (Python's
`random` is reseeded at fork by Python itself), TMPDIR looked up again. Several servers may stand behind one
client (a test with two environments): it asks each in turn.

Known differences, none of which the tests look at: warnings printed while a library is imported went to the
server's log once, not to each command's stderr (tests/test_r2r_cli_friction.py checks those in fresh processes);
the str hash seed, sys.flags and sys.orig_argv are the server's; numpy's BLAS pool keeps the server's size.

The server has a few library threads when it forks (one from torch's import, pyarrow's jemalloc background thread,
one from peft); it forks only while they and it are idle (it waits in select()), and it runs no torch op itself, so
the child's torch builds its own thread pool. A child ends as an interpreter does (non-daemon threads joined, atexit
handlers run, the status masked to 8 bits, an uncaught KeyboardInterrupt ends it by SIGINT). A request that breaks
off (a client killed mid-request) is dropped, and the server goes on; the server ends with the test process that
started it, and takes every command still running with it (each command's whole process group).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from pathlib import Path

PRELOAD = (  # what the commands import, module by module (diffusers and transformers import lazily on first use)
    "torch", "numpy", "PIL.Image", "pyarrow.parquet", "pandas", "datasets", "huggingface_hub", "safetensors.torch",
    "rich.console", "rich.progress", "accelerate", "peft", "transformers",
    "transformers.models.clip.modeling_clip", "transformers.models.clip.tokenization_clip",
    "transformers.models.resnet.modeling_resnet", "diffusers",
    "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion", "diffusers.models.unets.unet_2d_condition",
    "diffusers.models.autoencoders.autoencoder_kl", "diffusers.schedulers.scheduling_ddim", "diffusers.optimization",
    "torch.distributed.run", "torch.distributed.elastic.multiprocessing", "matplotlib.pyplot", "webdataset",
    "synfashion.cli", "synfashion.commands.build", "synfashion.hub", "synfashion.verify", "synfashion.stats",
    "synfashion.sample", "loaders", "loaders.sources", "r2r.cli", "r2r.models.load", "r2r.rig.pipeline",
    "r2r.translate.dataset", "r2r.translate.folder", "r2r.evaluation.run", "r2r.evaluation.table", "r2r.metrics",
    "r2r.pages.report", "r2r.dki", "r2r.dki.negative", "r2r.dki.positive", "r2r.dki.publish",
    "r2r.downstream.runner", "r2r.tiny",
)
FALLBACK = -1000  # "run the real program instead" (a status is 0..255, or -N for "killed by signal N")
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
# variables read when a library is imported or the interpreter starts: a request must agree with the server on them
# (rich reads COLUMNS and LINES when it draws, from the live environment: not listed; a terminal falls back anyway)
IMPORT_TIME = ("HF_", "HUGGING", "TRANSFORMERS_", "DIFFUSERS_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "PYTHON",
               "TORCH_LOGS", "LD_", "MALLOC_", "GLIBC_TUNABLES", "NO_COLOR", "FORCE_COLOR", "TTY_", "JUPYTER_")
SET_UP_IN_CHILD = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"}
INTERPRETER_FLAGS = {"-u", "-B"}  # the flags a served `python` may carry (others fall back)
ROOT = Path(__file__).resolve().parents[1]

CLIENT = r'''#!{python} -S
import json, os, signal, socket, struct, sys
real, prog, socks = {real!r}, {prog!r}, {socks!r}
argv = [prog, *sys.argv[1:]]
here = os.path.abspath(sys.argv[0])
msg = json.dumps({{"prog": prog, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "executable": here,
                  "client": os.getpid(), "tty": any(os.isatty(fd) for fd in (0, 1, 2))}}).encode()
msg = struct.pack("i", len(msg)) + msg


def receive(s):
    data = b""
    while len(data) < 4:
        chunk = s.recv(4 - len(data))
        if not chunk:
            return None
        data += chunk
    return struct.unpack("i", data)[0]


for sock in socks:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock)
    except OSError:
        continue
    try:
        sent = socket.send_fds(s, [msg], [0, 1, 2])
        if sent < len(msg):
            s.sendall(msg[sent:])
        pid = receive(s)
    except OSError:  # the server went away: the next one, or the real program
        pid = None
    if pid is None or pid == {fallback}:
        s.close()
        continue

    def forward(signum, frame, pid=pid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for name in {forwarded!r}:
        signal.signal(getattr(signal, name), forward)
    code = receive(s)
    if code is None:
        sys.exit(1)  # the server went away
    if code < 0:  # killed by a signal: so is its stand-in
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
os.execv(real, [real, *sys.argv[1:]])
'''


def _differs(env: dict, server_env: dict) -> str | None:
    """The first import-time variable on which `env` and the server disagree, or None. The thread variables may
    differ in value (the child sets torch's count), not in presence: without one, a fresh process picks its own."""
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    if any(k in env for k in threads) != any(k in server_env for k in threads):
        return "OMP_NUM_THREADS"
    keys = {k for k in (*env, *server_env) if k.startswith(IMPORT_TIME) and k != "PYTHON"} - SET_UP_IN_CHILD
    return next((k for k in sorted(keys) if env.get(k) != server_env.get(k)), None)


def _python_path_served(env: dict) -> bool:
    """PYTHONPATH names only folders the server already imports from (so no module would resolve differently)."""
    known = {os.path.realpath(p or os.getcwd()) for p in sys.path} | {str(ROOT)}
    return all(os.path.realpath(p) in known for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)


def _threads(env: dict) -> int | None:
    value = env.get("OMP_NUM_THREADS") or env.get("MKL_NUM_THREADS")
    if value is None:
        return None
    try:
        return max(1, int(value))
    except ValueError:
        return -1  # not a number: let a fresh process decide what it makes of it


def _parse(request: dict) -> dict | None:
    """What to run ({"kind": ..., ...}), or None when it is not servable."""
    prog, args = request["prog"], request["argv"][1:]
    if prog in ("r2r", "synfashion"):
        return {"kind": prog, "args": args, "unbuffered": False, "no_bytecode": False}
    flags = []
    while args and args[0] in INTERPRETER_FLAGS:
        flags.append(args.pop(0))
    plan = {"unbuffered": "-u" in flags, "no_bytecode": "-B" in flags}
    if args[:1] == ["-"]:
        return {**plan, "kind": "stdin", "args": args[1:]}
    if args[:1] == ["-m"] and len(args) > 1:
        return {**plan, "kind": "module", "module": args[1], "args": args[2:]}
    if args[:1] == ["-c"] and len(args) > 1:
        return {**plan, "kind": "code", "code": args[1], "args": args[2:]}
    if args and not args[0].startswith("-"):
        return {**plan, "kind": "script", "script": args[0], "args": args[1:]}
    return None


def _run(plan: dict) -> int:
    """The command as the interpreter runs it (in the forked child), with the sys.path[0] it would have."""
    kind = plan["kind"]
    if kind in ("r2r", "synfashion"):
        sys.path[0] = str(Path(sys.executable).parent)  # a console script's own folder
        sys.argv = [kind, *plan["args"]]
        module = importlib.import_module(f"{kind}.cli")
        return int(module.main(plan["args"]) or 0)
    if kind in ("stdin", "code"):  # a script on standard input (a here-document), or -c
        sys.path[0] = ""
        sys.argv = ["-" if kind == "stdin" else "-c", *plan["args"]]
        source, name = (sys.stdin.read(), "<stdin>") if kind == "stdin" else (plan["code"], "<string>")
        main = types.ModuleType("__main__")  # a module of its own, as the interpreter's (pickle looks classes up)
        main.__dict__.update(__builtins__=__builtins__, __spec__=None, __loader__=None)
        sys.modules["__main__"] = main
        exec(compile(source, name, "exec"), main.__dict__)
        return 0
    import runpy

    if kind == "module":
        sys.path[0] = os.getcwd()  # python -m: the working folder, as a full path
        sys.argv = [plan["module"], *plan["args"]]
        runpy.run_module(plan["module"], run_name="__main__", alter_sys=True)
        return 0
    script = os.path.abspath(plan["script"])
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    sys.argv = [plan["script"], *plan["args"]]
    runpy.run_path(script, run_name="__main__")
    return 0


def _streams(unbuffered: bool) -> None:
    """Standard streams on the client's descriptors, buffered as a fresh interpreter's would be."""
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the client's stream, read by the command
    for fd, name in ((1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        raw = io.FileIO(fd, "w", closefd=False)
        buffer = raw if unbuffered else io.BufferedWriter(raw)
        tty = os.isatty(fd)
        setattr(sys, name, io.TextIOWrapper(buffer, encoding=old.encoding, errors=old.errors, write_through=unbuffered,
                                            line_buffering=tty or name == "stderr"))


def _watch(conn: socket.socket) -> None:
    """Die with SIGKILL when the client is gone (it never sends after its request: recv returns only at its end).
    A command that closed the descriptor itself is not watched any more."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _child(conn: socket.socket, request: dict, plan: dict, fds: list[int], server_threads: int) -> None:
    code = 1
    try:
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # before the client can forward anything
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the server's handler
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own children
        os.setpgid(0, 0)  # a process group of its own, as a command started by a shell: its killpg stays its own
        conn.sendall(struct.pack("i", os.getpid()))
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        env = request["env"]
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        _streams(plan["unbuffered"] or bool(env.get("PYTHONUNBUFFERED")))
        sys.dont_write_bytecode = plan["no_bytecode"] or bool(env.get("PYTHONDONTWRITEBYTECODE"))
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[1:1] = [p for p in extra if p not in sys.path]
        sys.executable = request["executable"] if request["prog"] == "python" else \
            str(Path(request["executable"]).parent / "python")
        tempfile.tempdir = None  # found again from this environment's TMPDIR
        import numpy
        import torch

        numpy.random.seed()  # fresh entropy, as a new interpreter has (Python's random is reseeded at fork)

        threads = _threads(env) or server_threads
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        try:
            code = _run(plan)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except KeyboardInterrupt:  # as the interpreter ends on one: the traceback, then death by SIGINT
            traceback.print_exc()
            _interpreter_exit()
            _flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001 - as an uncaught exception ends a program: traceback, status 1
            traceback.print_exc()
            code = 1
        code &= 0xFF  # as the process status would be
        _interpreter_exit()
    finally:
        _flush()
        try:
            conn.sendall(struct.pack("i", code & 0xFF))
        finally:
            os._exit(code & 0xFF)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):  # and what a module kept at import
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe: nothing more to say
            pass


def _interpreter_exit() -> None:
    """What the interpreter does at exit before the process ends: join non-daemon threads, run atexit handlers (a
    command that would hang or fail there does so here too)."""
    import atexit

    try:
        threading._shutdown()  # the interpreter's own call at exit
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints it
        traceback.print_exc()


def serve(path: str) -> None:
    """Import PRELOAD, then serve clients on the Unix socket `path` until killed."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional library (matplotlib, ...): the command imports it itself, or says why
            pass
    import torch

    server_threads = torch.get_num_threads()  # a query: it starts no thread
    server_env = dict(os.environ)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    children: dict[int, socket.socket] = {}  # pid -> its connection (kept to report a death by signal)
    pids = Path(path).parent / "pids"
    pids.mkdir(exist_ok=True)

    def end(signum=None, frame=None):  # WarmServer.close(), or the test process gone: so go its commands
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)  # the command and whatever it started (its own process group)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([srv], [], [], 0.2)
        _reap(children, pids)
        if os.getppid() != parent:  # the test process died without closing us (killed, out of memory)
            end()
        if not ready:
            continue
        conn, _ = srv.accept()
        fds: list[int] = []
        try:
            request, fds = _receive(conn)
            pid = _start(conn, request, fds, server_env, server_threads, srv, children)
        except Exception as e:  # noqa: BLE001 - a client gone mid-request: its command never starts, the rest go on
            print(f"request dropped: {e!r}", file=sys.stderr, flush=True)
            pid = None
        for fd in fds:
            os.close(fd)
        if pid is None:
            conn.close()
        else:
            children[pid] = conn
            (pids / str(request["client"])).write_text(str(pid))  # Clients.kill: the command behind a client


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """A client's request (length-prefixed JSON) and its three descriptors."""
    conn.settimeout(30)
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ConnectionError(f"{len(fds)} descriptors instead of 3")
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack("i", data[:4])[0]:
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the client went away mid-request")
            data += chunk
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    conn.settimeout(None)
    return json.loads(data[4:]), fds


def _start(conn, request: dict, fds: list[int], server_env: dict, server_threads: int, srv, children) -> int | None:
    """Fork the command's process (its pid), or answer FALLBACK (None) when a fresh process would differ."""
    plan = _parse(request)
    env = request["env"]
    threads = _threads(env)
    why = ("an interpreter option it does not set up" if plan is None else
           ("a terminal" if request.get("tty") else None) or  # module-level consoles were made for a log file
           _differs(env, server_env) or ("PYTHONPATH" if not _python_path_served(env) else None) or
           ("OMP_NUM_THREADS" if threads == -1 else None))
    if why:
        print(f"not served ({why}): {request['argv'][:4]}", file=sys.stderr, flush=True)  # server.log
        conn.sendall(struct.pack("i", FALLBACK))
        return None
    pid = os.fork()
    if pid == 0:
        srv.close()
        for other in children.values():  # another command's client must see its end when it ends
            other.close()
        children.clear()
        _child(conn, request, plan, fds, server_threads)
    return pid


def _reap(children: dict[int, socket.socket], pids: Path) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        for done in [f for f in pids.iterdir() if f.read_text() == str(pid)]:
            done.unlink()
        if os.WIFSIGNALED(status):  # it could not say so itself
            try:
                conn.sendall(struct.pack("i", -os.WTERMSIG(status)))
            except OSError:
                pass
        conn.close()


def install_clients(folder: Path, socks: list[str]) -> Path:
    """`r2r`, `synfashion` and `python` clients of the servers on `socks` in `folder` (put it first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    for prog in ("r2r", "synfashion", "python"):
        real = str(bin_dir / prog) if prog != "python" else sys.executable
        path = folder / prog
        path.write_text(CLIENT.format(python=sys.executable, real=real, prog=prog, socks=list(socks),
                                      fallback=FALLBACK, forwarded=FORWARDED))
        path.chmod(0o755)
    return folder


class Clients:
    """The client programs in `bin`: use `python` / `r2r` / `synfashion` where a test would write sys.executable /
    the console script, or put `bin` first on PATH."""

    def __init__(self, bin: Path, servers: list[WarmServer]):
        self.bin, self.servers = bin, servers
        self.python, self.r2r, self.synfashion = (str(bin / p) for p in ("python", "r2r", "synfashion"))

    def kill(self, client: subprocess.Popen, signum: int = signal.SIGKILL) -> int:
        """Send `signum` to the command behind `client` (not to the client: a client killed with SIGKILL takes its
        command with it only moments later) and wait for the client, whose status is then the command's."""
        deadline = time.monotonic() + 10
        while True:
            found = [s.command_pid(client.pid) for s in self.servers]
            pid = next((p for p in found if p), None)
            if pid is not None or client.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        try:
            os.kill(client.pid if pid is None else pid, signum)  # no served command: the real program ran
        except ProcessLookupError:
            pass
        return client.wait(60)


class WarmServer:
    """A `serve` process for the environment `env`, in its own process group; `close()` ends it and every command
    it forked that is still running. `clients(folder)`: the `python`, `r2r` and `synfashion` that it serves."""

    def __init__(self, env: dict, cwd: Path | None = None):
        self._dir = tempfile.mkdtemp(prefix="warm", dir="/tmp")  # a Unix socket path is at most 107 bytes
        self.sock = os.path.join(self._dir, "s")
        self.log = Path(self._dir) / "server.log"  # what the libraries print while imported
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), self.sock], cwd=cwd or ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True)
        self._started = False

    def ready(self) -> WarmServer:
        """Wait for its imports (servers started one after another import side by side)."""
        if not self._started:
            said = self.proc.stdout.readline().strip()
            if said != "ready":
                log = self.log.read_text(errors="replace")[-3000:]
                self.close()
                raise RuntimeError(f"the warm server did not start:\n{log}")
            self._started = True
        return self

    def close(self) -> None:
        self.proc.terminate()  # the server kills the commands it forked that still run (their own process groups)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def clients(self, folder: Path, *more: WarmServer) -> Clients:
        servers = [s.ready() for s in (self, *more)]
        install_clients(folder, [s.sock for s in servers])
        return Clients(folder, servers)

    def command_pid(self, client_pid: int) -> int | None:
        try:
            return int((Path(self._dir) / "pids" / str(client_pid)).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def __enter__(self) -> WarmServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    serve(sys.argv[1])

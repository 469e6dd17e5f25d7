"""A warm Python for tests that run many commands as a user would (tests/test_readme_path.py).

Why: every `r2r` or `synfashion` command a bash script runs is a new interpreter that imports torch, diffusers,
transformers and datasets again: seconds each, most of the README path's time on a 2-core machine. Here one
process imports them once (`serve`), and the `r2r`, `synfashion` and `python` on the script's PATH are small clients
(`install_clients`) that hand this process their arguments, working folder, environment and standard streams (the
file descriptors themselves, over a Unix socket); it forks, and the child runs the command's own `main()` exactly as
the entry point would, writing straight to the client's streams, and sends back the exit status. bash, pipes, `cd`,
variables and here-documents stay the shell's.

What a fresh process would see differently is refused, never served: the libraries read HF_* variables when they are
imported, so a request whose HF_* / HUGGING* environment differs from the server's, or a `python` invocation other
than `python -` and `python -m MODULE`, falls back to the real program (the client `exec`s it).

Measured on a quiet 2-core machine (`pytest tests/test_readme_path.py`): the README path 103 s as fresh processes,
45 s served. The server has a few library threads when it forks (one from torch's import, pyarrow's jemalloc
background thread, one from peft); it forks only while they and it are idle (it waits in accept()), and it runs no
torch op itself, so the child's torch builds its own thread pool (a served two-thread matmul was checked). A child
ends as an interpreter does (non-daemon threads joined, atexit handlers run, the status masked to 8 bits); one killed
by a signal reads as status 1 to the script (it cannot tell the signal), which fails the README test all the same.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import struct
import sys
import traceback
from pathlib import Path

PRELOAD = (  # what the commands import, module by module (diffusers and transformers import lazily on first use)
    "torch", "numpy", "PIL.Image", "pyarrow.parquet", "pandas", "datasets", "huggingface_hub", "safetensors.torch",
    "rich.console", "rich.progress", "accelerate", "peft", "transformers",
    "transformers.models.clip.modeling_clip", "transformers.models.clip.tokenization_clip",
    "transformers.models.resnet.modeling_resnet", "diffusers",
    "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion", "diffusers.models.unets.unet_2d_condition",
    "diffusers.models.autoencoders.autoencoder_kl", "diffusers.schedulers.scheduling_ddim", "diffusers.optimization",
    "matplotlib.pyplot", "synfashion.cli", "synfashion.commands.build", "synfashion.hub", "synfashion.verify",
    "synfashion.stats", "synfashion.sample", "loaders", "loaders.sources", "r2r.cli", "r2r.models.load",
    "r2r.rig.pipeline", "r2r.translate.dataset", "r2r.translate.folder", "r2r.evaluation.run",
    "r2r.evaluation.table", "r2r.metrics", "r2r.pages.report", "r2r.dki", "r2r.dki.negative", "r2r.dki.positive",
    "r2r.dki.publish", "r2r.downstream.runner", "r2r.tiny",
)
FALLBACK = -1  # the child's answer for "run the real program instead" (a status is 0..255)

CLIENT = r'''#!{python} -S
import json, os, socket, struct, sys
real, prog = {real!r}, {prog!r}
args = sys.argv[1:]
served = prog != "python" or args[:1] == ["-"] or (args[:1] == ["-m"] and len(args) > 1)
if served:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect({sock!r})
    msg = json.dumps({{"prog": prog, "argv": [prog, *args], "cwd": os.getcwd(), "env": dict(os.environ)}})
    socket.send_fds(s, [msg.encode()], [0, 1, 2])
    data = b""
    while len(data) < 4:
        chunk = s.recv(4 - len(data))
        if not chunk:
            sys.exit(1)
        data += chunk
    code = struct.unpack("i", data)[0]
    if code != {fallback}:
        sys.exit(code)  # 0..255
os.execv(real, [real, *args])
'''


def _hf_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(("HF_", "HUGGING"))}


def _run(prog: str, argv: list[str]) -> int:
    """The command as its entry point runs it (in the forked child), with the sys.path[0] it would have."""
    if prog in ("r2r", "synfashion"):
        sys.path[0] = str(Path(sys.executable).parent)  # a console script's own folder
    elif argv[1:2] == ["-"]:
        sys.path[0] = ""  # python -: the working folder
    else:
        sys.path[0] = os.getcwd()  # python -m: the working folder, as a full path
    if prog == "r2r":
        from r2r.cli import main
        return int(main(argv[1:]) or 0)
    if prog == "synfashion":
        from synfashion.cli import main
        return int(main(argv[1:]) or 0)
    if argv[1:2] == ["-"]:  # a script on standard input (a here-document)
        sys.argv = ["-", *argv[2:]]
        code = compile(sys.stdin.read(), "<stdin>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        return 0
    import runpy  # python -m MODULE ...

    sys.argv = [argv[2], *argv[3:]]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    return 0


def _child(conn: socket.socket, request: dict, fds: list[int], server_hf: dict) -> None:
    code = 1
    try:
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the client's stream, read by the command
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own children
        if _hf_env(request["env"]) != server_hf:
            code = FALLBACK
        else:
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = list(request["argv"])
            try:
                code = _run(request["prog"], request["argv"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if not isinstance(e.code, int) and e.code is not None:
                    print(e.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 - as an uncaught exception ends a program: traceback, status 1
                traceback.print_exc()
                code = 1
            code &= 0xFF  # as the process status would be (never FALLBACK)
            _interpreter_exit()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe: nothing more to say
                pass
        try:
            conn.sendall(struct.pack("i", code if code == FALLBACK else code & 0xFF))
        finally:
            os._exit(code & 0xFF)


def _interpreter_exit() -> None:
    """What the interpreter does at exit before the process ends: join non-daemon threads, run atexit handlers (a
    command that would hang or fail there does so here too)."""
    import atexit
    import threading

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
    server_hf = _hf_env(dict(os.environ))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    print("ready", flush=True)
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:
            continue
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 22, 3)
        request = json.loads(msg)
        if os.fork() == 0:
            srv.close()
            _child(conn, request, fds, server_hf)
        for fd in fds:
            os.close(fd)
        conn.close()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def install_clients(folder: Path, sock: str) -> Path:
    """`r2r`, `synfashion` and `python` clients of the server on `sock` in `folder` (put it first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    for prog in ("r2r", "synfashion", "python"):
        real = str(bin_dir / prog) if prog != "python" else sys.executable
        path = folder / prog
        path.write_text(CLIENT.format(python=sys.executable, real=real, prog=prog, sock=sock, fallback=FALLBACK))
        path.chmod(0o755)
    return folder


if __name__ == "__main__":
    serve(sys.argv[1])

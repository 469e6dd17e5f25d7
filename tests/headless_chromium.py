"""A headless Chromium for tests, driven through the DevTools protocol over `--remote-debugging-pipe`.

Why by hand: the pipe transport is NUL-separated JSON on file descriptors 3 and 4 (the transport Puppeteer uses
with `pipe: true`), so the standard library is enough: no websocket package, no Playwright browser download.
Only what the page tests need: open a page, evaluate JavaScript, press keys, click, reload, collect console
errors and failed loads, and receive downloads. Not a general client.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
# key -> (code, windowsVirtualKeyCode) for Input.dispatchKeyEvent
KEYS = {"1": ("Digit1", 49), "2": ("Digit2", 50), "ArrowLeft": ("ArrowLeft", 37), "ArrowRight": ("ArrowRight", 39)}


def find_chromium() -> str | None:
    """$R2R_CHROMIUM, else the first Chromium-like binary on PATH."""
    given = os.environ.get("R2R_CHROMIUM")
    if given:
        return shutil.which(given) or (given if os.access(given, os.X_OK) else None)
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


class DevToolsError(RuntimeError):
    pass


class Chromium:
    """One headless browser process; use as a context manager (the process is always ended)."""

    def __init__(self, binary: str, workdir: Path, *, timeout: float = 30.0):
        self.timeout = timeout
        self.downloads = Path(workdir) / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._log = open(Path(workdir) / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        cmd_read, cmd_write = os.pipe()  # we write commands; Chromium reads them on fd 3
        evt_read, evt_write = os.pipe()  # Chromium writes replies and events on fd 4

        def on_fds_3_and_4() -> None:  # in the child, before exec
            a = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(evt_write, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={Path(workdir) / 'profile'}",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=on_fds_3_and_4, close_fds=False)
        os.close(cmd_read)
        os.close(evt_write)
        self._out, self._in = cmd_write, evt_read
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(self.downloads),
                  eventsEnabled=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close")
            except (DevToolsError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its handle
                self.proc.wait(10)
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()

    # ------------------------------------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DevToolsError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise DevToolsError(f"Chromium exited (status {self.proc.poll()}); see chromium.log")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, predicate=lambda params: True, session: str | None = None) -> dict:
        """The first event `method` (kept or arriving) whose params satisfy `predicate`; it is consumed."""
        deadline = time.monotonic() + self.timeout
        while True:
            for n, e in enumerate(self.events):
                if e["method"] == method and (session is None or e.get("sessionId") == session) \
                        and predicate(e.get("params", {})):
                    return self.events.pop(n)["params"]
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session)
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def navigate(self, url: str) -> None:
        self.browser.events = [e for e in self.browser.events if e["method"] != "Page.loadEventFired"]
        self.browser.send("Page.navigate", self.session, url=url)
        self.browser.wait_event("Page.loadEventFired", session=self.session)

    def reload(self) -> None:
        self.browser.events = [e for e in self.browser.events if e["method"] != "Page.loadEventFired"]
        self.browser.send("Page.reload", self.session)
        self.browser.wait_event("Page.loadEventFired", session=self.session)

    def local_storage(self) -> dict[str, str]:
        """The page origin's localStorage as DevTools reports it (not through the page's own script)."""
        origin = self.evaluate("location.origin")
        self.browser.send("DOMStorage.enable", self.session)
        entries = self.browser.send("DOMStorage.getDOMStorageItems", self.session,
                                    storageId={"securityOrigin": origin, "isLocalStorage": True})["entries"]
        return dict(entries)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression (awaited if it is a promise)."""
        r = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True,
                              awaitPromise=True)
        if "exceptionDetails" in r:
            raise DevToolsError(f"{expression!r}: {r['exceptionDetails'].get('text')} "
                                f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def press(self, key: str) -> None:
        code, vk = KEYS[key]
        text = {"text": key} if len(key) == 1 else {}
        for kind in ("keyDown", "keyUp"):
            self.browser.send("Input.dispatchKeyEvent", self.session, type=kind, key=key, code=code,
                              windowsVirtualKeyCode=vk, **(text if kind == "keyDown" else {}))
        self.settle()

    def settle(self) -> None:
        """Wait until the page has handled the input sent so far: DevTools answers an input event once the browser
        has it, not once the page's handlers ran, so on a loaded machine a reload could overtake a key press. Input
        is dispatched before a frame's animation callbacks, so one frame and a task later it has been handled."""
        self.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); "
                            "el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect(); "
                            "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.browser.send("Input.dispatchMouseEvent", self.session, type=kind, x=box[0], y=box[1], button="left",
                              clickCount=1)
        self.settle()

    def download(self, selector: str) -> Path:
        """Click `selector` and return the file the page downloads."""
        self.click(selector)
        begun = self.browser.wait_event("Browser.downloadWillBegin")
        self.browser.wait_event("Browser.downloadProgress", lambda p: p.get("guid") == begun["guid"]
                                and p.get("state") == "completed")
        return self.browser.downloads / begun["suggestedFilename"]

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads (Log entries of level error) so far."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

#!/usr/bin/env python3
"""End-to-end check of the showcase's `/hubs/userCount` hub with the `pysignalr` client.

Standalone: run `python3 e2e/python/test_showcase.py` from the repository root after
`pip install -r e2e/python/requirements.txt` and `cargo build`. It starts the showcase binary
itself (env `SHOWCASE_BIN` overrides `<repo>/target/debug/showcase`) on a free loopback port with
a fresh database, connects two clients over WebSockets, and checks:

- each client completes negotiate + handshake,
- connecting broadcasts `updateTotalUsers(count)` to everyone (both see 2 once both are in),
- `NewWindowLoaded("Python")` from client A returns `Total views for Python - <v>`,
- both clients receive the broadcast `updateTotalViews(<v>)` with the same `<v>`,
- a third client with pysignalr's MessagePack protocol invokes the same method, and it and a
  JSON client both receive the new count.

Prints one line per case, then `N passed, N failed`, and exits non-zero on any failure.
`E2E_DEBUG=1` turns on the client's debug log (negotiate URL, frames sent and received) and
prints the server's stderr at the end (set `RUST_LOG=debug` for a detailed one); on a failure the
last lines of the server's stderr are printed anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pysignalr.client import SignalRClient
from pysignalr.protocol.messagepack import MessagepackProtocol
from pysignalr.messages import CompletionMessage

REPO_ROOT = Path(__file__).resolve().parents[2]
HUB_PATH = "/hubs/userCount"
START_TIMEOUT = 60.0  # a debug build opening its database may be slow on a loaded machine
WAIT_TIMEOUT = 15.0  # every other wait
STOP_TIMEOUT = 10.0
LISTENING = re.compile(r"^listening on (http://\S+)$")


class CaseFailure(Exception):
    """A check did not hold; the message says what was expected and what was seen."""


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, name: str, detail: str = "") -> None:
        self.passed += 1
        print(f"PASS {name}" + (f" ({detail})" if detail else ""), flush=True)

    def fail(self, name: str, reason: str) -> None:
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)


# --------------------------------------------------------------------------- the server


class Showcase:
    """The showcase binary on 127.0.0.1 with a port of its choosing and a throwaway database."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="showcase-py-e2e-"))
        self.stderr_path = self.dir / "server.stderr.log"
        self.process: subprocess.Popen[str] | None = None
        self.url: str | None = None

    def start(self) -> str:
        if not self.binary.is_file():
            raise CaseFailure(f"server binary not found: {self.binary} (build it or set SHOWCASE_BIN)")
        stderr = open(self.stderr_path, "w")
        try:
            self.process = subprocess.Popen(
                [str(self.binary), "--addr", "127.0.0.1:0", "--database", str(self.dir / "db.sqlite")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        finally:
            stderr.close()
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any) -> None:  # drains stdout for the server's whole life
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(self.process.stdout,), daemon=True).start()
        end = time.monotonic() + START_TIMEOUT
        seen: list[str] = []
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise CaseFailure(f"no 'listening on' line within {START_TIMEOUT:.0f} s; stdout: {seen!r}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait(timeout=STOP_TIMEOUT)
                raise CaseFailure(f"server exited with code {code} before listening; stdout: {seen!r}")
            seen.append(line.rstrip("\n"))
            match = LISTENING.match(line.strip())
            if match:
                self.url = match.group(1)
                return self.url

    def stop(self) -> int | None:
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                code = self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait(timeout=STOP_TIMEOUT)
        elif self.process is not None:
            code = self.process.returncode
        return code

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- a client


class HubClient:
    """One pysignalr connection to the hub, recording what the server sends it."""

    def __init__(self, name: str, url: str, protocol: Any = None) -> None:
        self.name = name
        self.client = SignalRClient(url, protocol=protocol, connection_timeout=int(WAIT_TIMEOUT))
        self.opened = asyncio.Event()
        self.users: list[Any] = []  # arguments of each updateTotalUsers
        self.views: list[Any] = []  # arguments of each updateTotalViews
        self.changed = asyncio.Event()  # set whenever something arrives
        self.errors: list[CompletionMessage] = []
        self.task: asyncio.Task[None] | None = None

        async def on_open() -> None:
            self.opened.set()

        async def on_users(arguments: list[Any]) -> None:
            self.users.append(arguments)
            self.changed.set()

        async def on_views(arguments: list[Any]) -> None:
            self.views.append(arguments)
            self.changed.set()

        async def on_error(message: CompletionMessage) -> None:
            self.errors.append(message)
            self.changed.set()

        self.client.on_open(on_open)
        self.client.on("updateTotalUsers", on_users)
        self.client.on("updateTotalViews", on_views)
        self.client.on_error(on_error)

    def start(self) -> None:
        self.task = asyncio.create_task(self.client.run(), name=f"client {self.name}")

    def died(self) -> str | None:
        """Why the client's run loop ended, if it did."""
        if self.task is None or not self.task.done():
            return None
        if self.task.cancelled():
            return "run loop cancelled"
        error = self.task.exception()
        return f"run loop ended: {error!r}" if error else "run loop returned"

    async def wait(self, what: str, condition: Any, timeout: float = WAIT_TIMEOUT) -> None:
        """Waits, at most `timeout` seconds, until `condition()` is true or the client dies."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            reason = self.died()
            if reason:
                raise CaseFailure(f"client {self.name} stopped while waiting for {what}: {reason}")
            remaining = end - loop.time()
            if remaining <= 0:
                raise CaseFailure(f"client {self.name}: no {what} within {timeout:.0f} s")
            self.changed.clear()
            waiters = [asyncio.ensure_future(self.changed.wait()), asyncio.ensure_future(self.opened.wait())]
            if self.task is not None:
                waiters.append(self.task)  # type: ignore[arg-type]
            done, pending = await asyncio.wait(
                waiters, timeout=min(remaining, 0.5), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                if waiter is not self.task:
                    waiter.cancel()

    async def invoke(self, method: str, arguments: list[Any]) -> CompletionMessage:
        """Invokes a hub method (with an invocation id) and returns its completion."""
        done: asyncio.Future[CompletionMessage] = asyncio.get_running_loop().create_future()

        async def on_completion(message: CompletionMessage) -> None:
            if not done.done():
                done.set_result(message)

        await asyncio.wait_for(self.client.send(method, arguments, on_completion), WAIT_TIMEOUT)
        await self.wait(f"completion of {method}", done.done)
        return done.result()

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=STOP_TIMEOUT)


# --------------------------------------------------------------------------- the cases


async def run_cases(base_url: str, results: Results) -> None:
    hub_url = base_url.rstrip("/") + HUB_PATH
    a = HubClient("A", hub_url)
    b = HubClient("B", hub_url)
    try:
        # One connection at a time, so that the user counts are predictable.
        name = "client A connects over WebSockets (negotiate + handshake)"
        try:
            a.start()
            await a.wait("open connection", a.opened.is_set)
            results.ok(name)
        except CaseFailure as error:
            results.fail(name, str(error))
            return

        name = "client B connects over WebSockets (negotiate + handshake)"
        try:
            b.start()
            await b.wait("open connection", b.opened.is_set)
            results.ok(name)
        except CaseFailure as error:
            results.fail(name, str(error))
            return

        name = "connecting broadcasts updateTotalUsers to both clients (count 2)"
        try:
            for client in (a, b):
                await client.wait("updateTotalUsers([2])", lambda c=client: [2] in c.users)
            results.ok(name, f"A saw {a.users}, B saw {b.users}")
        except CaseFailure as error:
            results.fail(name, f"{error}; A saw {a.users}, B saw {b.users}")

        name = 'A invokes NewWindowLoaded("Python") and gets "Total views for Python - <v>"'
        views: int | None = None
        try:
            completion = await a.invoke("NewWindowLoaded", ["Python"])
            if completion.error:
                raise CaseFailure(f"server answered with an error: {completion.error!r}")
            result = completion.result
            match = re.fullmatch(r"Total views for Python - (\d+)", result) if isinstance(result, str) else None
            if not match:
                raise CaseFailure(f"unexpected result {result!r}")
            views = int(match.group(1))
            if views < 1:
                raise CaseFailure(f"views should be at least 1 after a call, got {views}")
            results.ok(name, repr(result))
        except CaseFailure as error:
            results.fail(name, str(error))

        for client in (a, b):
            name = f"client {client.name} receives the broadcast updateTotalViews(<v>)"
            try:
                if views is None:
                    raise CaseFailure("no <v> to compare with (the invocation failed)")
                expected = [views]
                await client.wait(f"updateTotalViews({expected})", lambda c=client: len(c.views) > 0)
                if client.views[0] != expected or not isinstance(client.views[0][0], int):
                    raise CaseFailure(f"expected arguments {expected}, got {client.views[0]!r}")
                results.ok(name, f"arguments {client.views[0]!r}")
            except CaseFailure as error:
                results.fail(name, str(error))

        name = "client C connects with the MessagePack protocol"
        c = HubClient("C", hub_url, protocol=MessagepackProtocol())
        try:
            c.start()
            await c.wait("open connection", c.opened.is_set)
            results.ok(name)
            name = 'C invokes NewWindowLoaded("MessagePack") and JSON client A sees the same count'
            completion = await c.invoke("NewWindowLoaded", ["MessagePack"])
            if completion.error:
                raise CaseFailure(f"server answered with an error: {completion.error!r}")
            match = re.fullmatch(r"Total views for MessagePack - (\d+)", str(completion.result))
            if not match or views is None or int(match.group(1)) != views + 1:
                raise CaseFailure(f"unexpected result {completion.result!r} after {views} views")
            await a.wait("a second updateTotalViews", lambda: len(a.views) > 1)
            await c.wait("updateTotalViews", lambda: len(c.views) > 0)
            if a.views[1] != [views + 1] or c.views[0] != [views + 1]:
                raise CaseFailure(f"A saw {a.views}, C saw {c.views}")
            results.ok(name, repr(completion.result))
        except CaseFailure as error:
            results.fail(name, str(error))
        finally:
            await c.stop()

        name = "no completion errors reached any client"
        errors = [(client.name, m.error) for client in (a, b, c) for m in client.errors]
        if errors:
            results.fail(name, repr(errors))
        else:
            results.ok(name)
    finally:
        await asyncio.gather(a.stop(), b.stop())


def main() -> int:
    if os.environ.get("E2E_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    else:
        logging.basicConfig(level=logging.ERROR)
    binary = Path(os.environ.get("SHOWCASE_BIN") or REPO_ROOT / "target" / "debug" / "showcase")
    results = Results()
    server = Showcase(binary)
    try:
        name = "showcase starts and prints its address"
        try:
            url = server.start()
            results.ok(name, url)
        except CaseFailure as error:
            results.fail(name, str(error))
            url = None
        if url is not None:
            try:
                asyncio.run(asyncio.wait_for(run_cases(url, results), 6 * WAIT_TIMEOUT + 30))
            except (asyncio.TimeoutError, TimeoutError):
                results.fail("the whole run", "did not finish in time")
            except Exception as error:  # an unexpected error is a failure, not a crash
                results.fail("the whole run", f"unexpected {error!r}")
    finally:
        code = server.stop()
        if (results.failed or os.environ.get("E2E_DEBUG")) and server.process is not None:
            tail = server.stderr_tail(400 if os.environ.get("E2E_DEBUG") else 60)
            if tail:
                print(f"--- server stderr (last lines; exit code {code}) ---", flush=True)
                print(tail, flush=True)
                print("--- end of server stderr ---", flush=True)
        server.cleanup()
    print(f"{results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())

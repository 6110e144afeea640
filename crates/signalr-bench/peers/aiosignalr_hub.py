"""The bench's hub contract on aiosignalr (PyPI), the Python peer in BENCHMARKS.md.

    python aiosignalr_hub.py [HOST:PORT]      # default 127.0.0.1:0 (port 0 picks one)

Serves `Echo(text) -> text` and `Broadcast(sentAtMicros, payload)` -> `Receive` to all
connections at `/bench` (aiosignalr matches method names case-insensitively), with
aiosignalr's default options, and prints `pid <PID> serving http://HOST:PORT/bench` like the
Rust `hub` example, so that scripts/bench reads both the same way.
"""

import asyncio
import os
import sys

from aiosignalr.server import Hub, SignalRServer


class BenchHub(Hub):
    async def echo(self, text: str) -> str:
        return text

    async def broadcast(self, sent_at_micros: int, payload: str) -> None:
        await self.clients.all_.send("Receive", sent_at_micros, payload)


async def main() -> None:
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0").rpartition(":")
    server = SignalRServer(BenchHub)
    host, port = await server.serve(host, int(port), path="/bench")
    print(f"pid {os.getpid()} serving http://{host}:{port}/bench", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

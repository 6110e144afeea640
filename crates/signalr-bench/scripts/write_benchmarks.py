"""Writes BENCHMARKS.md from a scripts/bench run:

    python3 write_benchmarks.py WORK OUT PEER_PYTHON   # scripts/bench: target/bench BENCHMARKS.md ...

WORK holds runs.tsv (name, server kind, scenario, exit status, wall seconds, server CPU seconds,
bench CPU seconds), one <name>.json report per run, commands.sh and settings.env (the sizes
used). The notes written by hand after a run (crates/signalr-bench/BENCHMARK-NOTES.md) are
copied in at the end when present; running this again rewrites the file from the same run.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

WORK, OUT, PEER_PYTHON = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ROOT = Path(__file__).resolve().parents[3]
ENV = dict(
    line.split("=", 1) for line in (WORK / "settings.env").read_text().splitlines() if "=" in line
)


def sh(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- the runs

runs = {}
for line in (WORK / "runs.tsv").read_text().splitlines():
    name, kind, scenario, status, wall, server_cpu, bench_cpu = line.split("\t")
    report = None
    path = WORK / f"{name}.json"
    if status == "0" and path.exists():
        report = json.loads(path.read_text())
    runs[name] = {
        "kind": kind,
        "scenario": scenario,
        "status": int(status),
        "wall": float(wall),
        "server_cpu": float(server_cpu),
        "bench_cpu": float(bench_cpu),
        "report": report,
        "results": report["results"] if report else None,
    }


def results(name):
    run = runs.get(name)
    return run["results"] if run else None


def ms(latency, key):
    if not latency:
        return "–"
    return f"{latency[key] / 1000:.2f}"


def percentiles(latency):
    """The p50, p90, p99 and max columns of a latency summary, in milliseconds."""
    return " | ".join(ms(latency, key) for key in ("p50_us", "p90_us", "p99_us", "max_us"))


def num(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}".replace(",", " ")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def times(value):
    return "–" if value is None else f"{value:.2f}×"


def percent(value):
    return "–" if value is None else f"{value * 100:.0f} %"


def cpu(name):
    run = runs.get(name)
    if not run:
        return "–", "–"
    return (
        f"{run['server_cpu']:.1f} s of {run['wall']:.0f} s",
        f"{run['bench_cpu']:.1f} s",
    )


def failed(name):
    run = runs.get(name)
    if run is None:
        return "not run"
    if run["results"] is None:
        return f"failed (exit {run['status']}, see target/bench/logs/{name}.bench.log)"
    return None


LABELS = {
    "hub": "signalr-server (examples/hub.rs)",
    "ceiling": "raw WebSocket echo (examples/ws_echo.rs)",
    "peer": "aiosignalr 0.1.1 (peers/aiosignalr_hub.py)",
}

# ---------------------------------------------------------------- machine and versions

lscpu = dict(
    (key.strip(), value.strip())
    for key, _, value in (line.partition(":") for line in sh("lscpu").splitlines())
)
meminfo = dict(
    (key.strip(), value.strip())
    for key, _, value in (line.partition(":") for line in Path("/proc/meminfo").read_text().splitlines())
)
memory_gib = int(meminfo.get("MemTotal", "0 kB").split()[0]) / 1024 / 1024

lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
locked = {}
for package in lock.get("package", []):
    locked.setdefault(package["name"], package["version"])


def locked_version(name):
    return locked.get(name, "?")


peer_versions = sh(
    PEER_PYTHON,
    "-c",
    "import importlib.metadata as m, platform; print(platform.python_version(), "
    "*(m.version(p) for p in ('aiosignalr', 'aiohttp', 'websockets')))",
).split()
while len(peer_versions) < 4:
    peer_versions.append("?")

T = float(ENV.get("DURATION", "10"))
PIPELINES = [int(p) for p in ENV.get("PIPELINES", "1 4").split()]
RECEIVERS = int(ENV.get("RECEIVERS", "10000"))
IDLE = int(ENV.get("IDLE", "20000"))
IDLE_WANTED = int(ENV.get("IDLE_WANTED", "20000"))
NOFILE = ENV.get("NOFILE", "?")
PINNED = ENV.get("PINNED") == "1"
QUICK = ENV.get("QUICK") == "1"
ECHO_CONNECTIONS = int(ENV.get("ECHO_CONNECTIONS", "100"))
WORKERS = int(ENV.get("CONNECT_WORKERS", "32"))
SOURCES = ENV.get("SOURCES", "")
STARTS = [run["report"]["started_at_unix_secs"] for run in runs.values() if run["report"]]
NOW = datetime.datetime.fromtimestamp(
    min(STARTS) if STARTS else datetime.datetime.now().timestamp(), datetime.timezone.utc
).strftime("%Y-%m-%d %H:%M UTC")

out = []
w = out.append

w("# Benchmarks")
w("")
w(
    f"Measured by `./scripts/bench` on {NOW}"
    + (" with `--quick` (short runs, small counts: not the figures to quote)" if QUICK else "")
    + f", {T:g} s of measuring per run. Every figure below comes from this one run; "
    "the ratios compare runs made one after the other on the same machine. "
    "Reproduce with `./scripts/bench` (the README's benchmark command; about 5 minutes)."
)
w("")
w("## Machine")
w("")
w("| | |")
w("|---|---|")
w(f"| CPU | {lscpu.get('Model name', '?')} ({lscpu.get('Hypervisor vendor', 'no')} hypervisor) |")
w(f"| cores | {os.cpu_count()} ({lscpu.get('Thread(s) per core', '?')} thread per core) |")
w(f"| memory | {memory_gib:.1f} GiB |")
w(f"| kernel | Linux {platform.release()} |")
w(f"| open-file limit | {NOFILE} (`ulimit -n`, raised to the hard limit) |")
w(
    "| pinning | "
    + ("server on core 0, bench on core 1 (`taskset`), bench with one runtime thread" if PINNED else "none (fewer than 2 cores)")
    + " |"
)
w("")
w("## Versions")
w("")
w("| | |")
w("|---|---|")
w(f"| Rust | {sh('rustc', '-V')}, release profile |")
w(
    f"| this project | signalr-server {locked_version('signalr-server')}, signalr-protocol "
    f"{locked_version('signalr-protocol')}, signalr-client {locked_version('signalr-client')}, "
    f"signalr-bench {locked_version('signalr-bench')} (git {ENV['BUILT_FROM']}) |"
)
w(
    f"| stack | axum {locked_version('axum')}, tungstenite {locked_version('tungstenite')}, "
    f"hyper {locked_version('hyper')}, tokio {locked_version('tokio')} |"
)
w(
    f"| peer | Python {peer_versions[0]}, aiosignalr {peer_versions[1]} (aiohttp {peer_versions[2]}, "
    f"websockets {peer_versions[3]}), in target/bench-venv |"
)
w("")
w("## How it was measured")
w("")
w(
    "Each run starts a fresh server on 127.0.0.1 (port 0) and one `signalr-bench` process, "
    "and stops the server afterwards. Three servers:"
)
w("")
w("- **hub**: this project's `signalr-server` serving the bench's hub contract (`Echo`, `Broadcast` → `Receive`), `crates/signalr-bench/examples/hub.rs`, default options;")
w(
    "- **ceiling**: `crates/signalr-bench/examples/ws_echo.rs`, a WebSocket echo on the same stack "
    "(axum's upgrade over tungstenite, the server's buffer settings: 4 KiB read buffer, no write "
    "buffer): it sends every frame back and has no hub layer (no negotiate, handshake, parsing or "
    "dispatch). It answers `echo` and, as the floor of memory per connection, `idle`;"
)
w(
    "- **peer**: the same hub contract on the Python package `aiosignalr` 0.1.1 from PyPI, "
    "`crates/signalr-bench/peers/aiosignalr_hub.py`, default options, its standalone aiohttp server "
    "(one process, one asyncio loop)."
)
w("")
w(
    f"- **echo**: {ECHO_CONNECTIONS} connections at pipeline depth "
    + " and ".join(f"{p} ({ECHO_CONNECTIONS * p} calls in flight)" for p in PIPELINES)
    + ", 32-character strings, JSON. Hub, ceiling and peer are driven by the same "
    "code, `echo --raw`: the bench's own WebSocket connections (`src/raw.rs`) write "
    "`{\"type\":1,\"invocationId\":\"N\",\"target\":\"Echo\",\"arguments\":[\"xx…\"]}` + `0x1E`, one "
    "frame per call, and count the hub's Completion, or the ceiling's unchanged record, as the "
    "answer. The hub is measured once more through `signalr-client` (`echo` without `--raw`). "
    "At depth 1 neither server can join several answers into one write; deeper, the hub joins "
    "the Completions queued for a connection into one frame while the echo answers frame by frame."
)
w(
    f"- **broadcast**: {num(RECEIVERS)} receivers (`signalr-client`, each negotiating and connecting "
    "from the source addresses in turn) and one sender calling `Broadcast` at 10 messages a second "
    f"(the latency target), and for the hub at 100 a second too ({num(RECEIVERS)} × 100 = "
    f"{num(RECEIVERS * 100)} deliveries a second offered, the throughput target)."
)
w(
    f"- **connect**: {WORKERS} workers opening connections as fast as they go (negotiate POST on "
    "keep-alive HTTP connections, TCP connect + WebSocket upgrade, handshake), each closed at once."
)
w(
    f"- **idle**: {num(IDLE)} connections opened (64 at a time) and held {T:g} s; server memory per connection "
    "= (VmRSS at the end − VmRSS before) ÷ connections open."
    + (
        f" The issue asks for {num(IDLE_WANTED)}; {num(IDLE)} is what fits under the open-file limit of {NOFILE} "
        "(each connection is a descriptor in the server and in the bench, plus their listeners, "
        "negotiate connections and runtime)."
        if IDLE < IDLE_WANTED
        else ""
    )
)
w(
    f"- `echo --raw`, `connect` and `idle` connect from {len(SOURCES.split(','))} loopback addresses "
    f"({SOURCES.split(',')[0]} … {SOURCES.split(',')[-1]}), round robin."
)
w(
    "- CPU: the server's user + system time while the bench ran (from `/proc/PID/stat`) and the "
    "bench's own, both over the whole bench process (opening and closing connections included), "
    "next to its wall time. A bench near 100 % of its core is the limit rather than the server."
)
w("")

# ---------------------------------------------------------------- figures

def best_of(prefix):
    """The run of `prefix-p<depth>` with the most invocations/s, and its depth."""
    found = [(results(f"{prefix}-p{p}"), p) for p in PIPELINES]
    found = [(r, p) for r, p in found if r]
    if not found:
        return None, None
    return max(found, key=lambda item: item[0]["invocations_per_sec"])


echo_hub, echo_hub_depth = best_of("echo-hub")
echo_ceiling, echo_ceiling_depth = best_of("echo-ceiling")
echo_peer, echo_peer_depth = best_of("echo-peer")
echo_client, echo_client_depth = best_of("echo-hub-client")


def rate_of(r, key):
    return r[key] if r else None


w("## Results")
w("")
w("### echo")
w("")
w(
    "| server | client code | pipeline | invocations/s | p50 ms | p90 ms | p99 ms | max ms | errors | "
    "vs ceiling (same depth) | vs peer (same depth) | server CPU | bench CPU |"
)
w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for depth in PIPELINES:
    ceiling_here = results(f"echo-ceiling-p{depth}")
    peer_here = results(f"echo-peer-p{depth}")
    for prefix, kind, client in (
        ("echo-ceiling", "ceiling", "raw"),
        ("echo-hub", "hub", "raw"),
        ("echo-hub-client", "hub", "signalr-client"),
        ("echo-peer", "peer", "raw"),
    ):
        name = f"{prefix}-p{depth}"
        r = results(name)
        problem = failed(name)
        if problem:
            w(f"| {LABELS[kind]} | {client} | {depth} | {problem} | | | | | | | | | |")
            continue
        lat = r["latency"]
        server_cpu, bench_cpu = cpu(name)
        w(
            f"| {LABELS[kind]} | {client} | {depth} | {num(r['invocations_per_sec'])} | "
            f"{percentiles(lat)} | {r['errors']['total']} | "
            f"{percent(ratio(r['invocations_per_sec'], rate_of(ceiling_here, 'invocations_per_sec')))} | "
            f"{times(ratio(r['invocations_per_sec'], rate_of(peer_here, 'invocations_per_sec')))} | "
            f"{server_cpu} | {bench_cpu} |"
        )
w("")
w("### broadcast")
w("")
w(
    "| server | receivers | messages/s | deliveries/s | delivered of expected | p50 ms | p90 ms | "
    "p99 ms | max ms | vs peer | server CPU | bench CPU |"
)
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
broadcast_peer = results("broadcast-peer")
for name, kind in (("broadcast-hub", "hub"), ("broadcast-hub-100", "hub"), ("broadcast-peer", "peer")):
    r = results(name)
    problem = failed(name)
    if problem:
        w(f"| {LABELS[kind]} | {problem} | | | | | | | | | | |")
        continue
    lat = r["latency"]
    server_cpu, bench_cpu = cpu(name)
    w(
        f"| {LABELS[kind]} | {num(r['receivers'])} | {r['target_rate']:g} (sent {r['messages_per_sec']:.1f}) | "
        f"{num(r['deliveries_per_sec'])} | {num(r['deliveries'])} of {num(r['expected_deliveries'])} | "
        f"{percentiles(lat)} | "
        f"{times(ratio(r['deliveries_per_sec'], rate_of(broadcast_peer, 'deliveries_per_sec')))} | "
        f"{server_cpu} | {bench_cpu} |"
    )
w("")
w("### broadcast across two nodes (Redis backplane)")
w("")
two_nodes = results("broadcast-2nodes")
if "broadcast-2nodes" not in runs:
    w("Not run: redis-server (Debian's package) was not installed.")
elif failed("broadcast-2nodes"):
    w(f"Failed: {failed('broadcast-2nodes')}.")
else:
    redis_env = dict(
        line.split("=", 1)
        for line in (WORK / "broadcast-2nodes.redis").read_text().splitlines()
        if "=" in line
    )
    publishes = int(redis_env.get("PUBLISHES", "0"))
    r = two_nodes
    lat = r["latency"]
    server_cpu, bench_cpu = cpu("broadcast-2nodes")
    single = results("broadcast-hub-100")
    w(
        "Two hub processes (`examples/hub.rs` with a Redis URL) and `redis-server` share the "
        "server's core; the receivers alternate between the nodes, and the sender calls "
        "`Broadcast` on the first. Each message reaches the first node's receivers directly and "
        "the second node's through one Redis publish. Server CPU counts both nodes and Redis."
    )
    w("")
    w(
        "| receivers (per node) | messages/s | deliveries/s | delivered of expected | p50 ms | "
        "p90 ms | p99 ms | max ms | Redis publishes per message | vs one node | server CPU | bench CPU |"
    )
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_message = ratio(publishes, r["messages_sent"])
    w(
        f"| {num(r['receivers'])} ({num(r['receivers'] / 2)}) | {r['target_rate']:g} (sent "
        f"{r['messages_per_sec']:.1f}) | {num(r['deliveries_per_sec'])} | {num(r['deliveries'])} of "
        f"{num(r['expected_deliveries'])} | {percentiles(lat)} | "
        f"{'–' if per_message is None else f'{per_message:.2f}'} ({num(publishes)} for "
        f"{num(r['messages_sent'])}) | "
        f"{percent(ratio(r['deliveries_per_sec'], rate_of(single, 'deliveries_per_sec')))} | "
        f"{server_cpu} | {bench_cpu} |"
    )
w("")
w("### connect storm")
w("")
w(
    "| server | workers | attempts | connects/s | failures | p50 ms | p90 ms | p99 ms | max ms | "
    "negotiate p50 ms | connect p50 ms | handshake p50 ms | vs peer | server CPU | bench CPU |"
)
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
connect_peer = results("connect-peer")
for name, kind in (("connect-hub", "hub"), ("connect-peer", "peer")):
    r = results(name)
    problem = failed(name)
    if problem:
        w(f"| {LABELS[kind]} | {problem} | | | | | | | | | | | | | |")
        continue
    lat = r["latency"]
    server_cpu, bench_cpu = cpu(name)
    w(
        f"| {LABELS[kind]} | {r['workers']} | {num(r['attempts'])} | {num(r['connects_per_sec'])} | "
        f"{r['failures']['total']} | {percentiles(lat)} | {ms(r['negotiate_latency'], 'p50_us')} | {ms(r['connect_latency'], 'p50_us')} | "
        f"{ms(r['handshake_latency'], 'p50_us')} | "
        f"{times(ratio(r['connects_per_sec'], rate_of(connect_peer, 'connects_per_sec')))} | "
        f"{server_cpu} | {bench_cpu} |"
    )
w("")
w("### idle")
w("")
w(
    "| server | open at the end | memory per connection | VmRSS before → opened → end (peak), MiB | "
    "opened in | dropped | peer ÷ this | this ÷ floor |"
)
w("|---|---:|---:|---:|---:|---:|---:|---:|")


def per_connection(r):
    if not r or not r.get("memory") or r["memory"].get("bytes_per_connection") is None:
        return None
    return r["memory"]["bytes_per_connection"]


idle_peer, idle_floor = results("idle-peer"), results("idle-ceiling")
for name, kind in (("idle-ceiling", "ceiling"), ("idle-hub", "hub"), ("idle-peer", "peer")):
    r = results(name)
    problem = failed(name)
    if problem:
        w(f"| {LABELS[kind]} | {problem} | | | | | | |")
        continue
    m = r.get("memory") or {}
    bpc = per_connection(r)

    def mib(key):
        return f"{m[key] / 1024:.1f}" if key in m else "–"

    w(
        f"| {LABELS[kind]} | {num(r['still_open'])} of {num(r['requested'])} | "
        f"{'–' if bpc is None else f'{bpc / 1024:.2f} KiB'} | "
        f"{mib('rss_before_kib')} → {mib('rss_opened_kib')} → {mib('rss_end_kib')} ({mib('rss_peak_kib')}) | "
        f"{r['open_secs']:.1f} s ({num(r['opens_per_sec'])}/s) | {r['dropped']['total']} | "
        f"{times(ratio(per_connection(idle_peer), bpc))} | {times(ratio(bpc, per_connection(idle_floor)))} |"
    )
w("")

# ---------------------------------------------------------------- targets

targets = []


def target(text, figure, met):
    verdict = "not measured" if met is None else ("**met**" if met else "**missed**")
    targets.append((text, figure, verdict))


r = echo_hub
target(
    f"echo, JSON over WebSockets, {ECHO_CONNECTIONS} connections: ≥ 100 000 invocations/s",
    f"{num(rate_of(r, 'invocations_per_sec'))}/s at pipeline {echo_hub_depth} (raw client; "
    f"{num(rate_of(echo_client, 'invocations_per_sec'))}/s through signalr-client at pipeline {echo_client_depth})",
    None if r is None else r["invocations_per_sec"] >= 100_000,
)
share = ratio(rate_of(r, "invocations_per_sec"), rate_of(echo_ceiling, "invocations_per_sec"))
target(
    "echo: ≥ 60 % of the raw WebSocket echo ceiling (each one's best depth)",
    f"{percent(share)} (hub {num(rate_of(r, 'invocations_per_sec'))}/s at pipeline {echo_hub_depth}, "
    f"ceiling {num(rate_of(echo_ceiling, 'invocations_per_sec'))}/s at pipeline {echo_ceiling_depth})",
    None if share is None else share >= 0.6,
)
b10, b100 = results("broadcast-hub"), results("broadcast-hub-100")
best = max((x["deliveries_per_sec"] for x in (b10, b100) if x), default=None)
target(
    f"broadcast to 10 000 connections: ≥ 1 000 000 deliveries/s (measured with {num(RECEIVERS)} receivers)",
    f"{num(best)}/s (at 100 messages/s: {num(rate_of(b100, 'deliveries_per_sec'))}/s, "
    f"{num(rate_of(b100, 'deliveries'))} of {num(rate_of(b100, 'expected_deliveries'))} delivered)",
    None if best is None else best >= 1_000_000 and RECEIVERS >= 10_000,
)
p99 = b10["latency"]["p99_us"] / 1000 if b10 and b10["latency"] else None
target(
    f"broadcast: p99 delivery latency < 50 ms at 10 messages/s (measured with {num(RECEIVERS)} receivers)",
    "–" if p99 is None else f"{p99:.2f} ms ({num(b10['deliveries'])} of {num(b10['expected_deliveries'])} delivered)",
    None if p99 is None else p99 < 50 and b10["missing_deliveries"] == 0 and RECEIVERS >= 10_000,
)
bpc = per_connection(results("idle-hub"))
target(
    f"idle: ≤ 10 KiB of server memory per open WebSocket at 20 000 connections (measured at {num(IDLE)})",
    "–" if bpc is None else f"{bpc / 1024:.2f} KiB",
    None if bpc is None else bpc <= 10 * 1024,
)
for text, a, b in (
    (
        "echo ≥ 10 × the Python peer (invocations/s, each one's best depth)",
        rate_of(echo_hub, "invocations_per_sec"),
        rate_of(echo_peer, "invocations_per_sec"),
    ),
    (
        "broadcast ≥ 10 × the Python peer (deliveries/s: the hub's best ÷ the peer's at 10 messages/s)",
        best,
        rate_of(broadcast_peer, "deliveries_per_sec"),
    ),
    (
        "connect storm ≥ 10 × the Python peer (connects/s)",
        rate_of(results("connect-hub"), "connects_per_sec"),
        rate_of(connect_peer, "connects_per_sec"),
    ),
    (
        "idle ≥ 10 × the Python peer (memory per connection, peer ÷ hub)",
        per_connection(idle_peer),
        bpc,
    ),
):
    x = ratio(a, b)
    target(text, times(x), None if x is None else x >= 10)

w("## Targets")
w("")
w("The issue's targets (on this 2-core machine, server on one core), from the figures above:")
w("")
w("| target | figure | verdict |")
w("|---|---|---|")
for text, figure, verdict in targets:
    w(f"| {text} | {figure} | {verdict} |")
w("")

# ---------------------------------------------------------------- commands and notes

w("## Commands")
w("")
w("`./scripts/bench` ran these (paths relative to the repository; `target/bench/` keeps each run's JSON report, table and logs):")
w("")
w("```sh")
w(f"ulimit -n {NOFILE}")
w("cargo build --release -p signalr-bench --bins --examples")
w("# each run below: the server started on core 0, then the bench on core 1, then the server stopped")
w("python3 -m venv target/bench-venv && target/bench-venv/bin/pip install aiosignalr==0.1.1")
for line in (WORK / "commands.sh").read_text().splitlines():
    w(line)
w("```")
w("")

notes = ROOT / "crates/signalr-bench/BENCHMARK-NOTES.md"
if notes.exists():
    w(notes.read_text().rstrip())
    w("")

OUT.write_text("\n".join(out))

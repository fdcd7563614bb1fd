#!/usr/bin/env python3
"""Slow-client attacks against a corsgate binary, on loopback only, bounded in size and time.

Starts `corsgate run` with a small config (max_connections, max_connections_per_ip as given; the
route's upstream is never contacted: the legitimate requests are CORS preflights, which corsgate
answers itself), then:

- attackers: N connections from 127.0.0.2..127.0.0.9 (bound source addresses), each either sending
  one byte of a request head every 2 s (`--attack slow`) or sending `P` (the first byte of the h2
  preface) and stalling (`--attack lockout`); a closed attacker reconnects at once, so the pressure
  stays on for the whole run;
- after a warm-up, legitimate clients from 127.0.0.1, each request on a fresh connection, for
  `--duration` seconds; prints p50/p99/max latency and the number that timed out.

    python3 bench/slowloris.py --binary target/release/corsgate --max-connections 200 \
        --attackers 300 --per-ip 0 --attack slow --duration 20

Traffic goes only to 127.0.0.1; the number of sockets is bounded by --attackers + --clients.
"""

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HEAD = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * 4000
PREFLIGHT = (
    b"OPTIONS /x HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\n"
    b"Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
)


def config(max_connections, per_ip, header_read_timeout):
    per_ip_line = f"max_connections_per_ip = {per_ip}\n" if per_ip is not None else ""
    return f"""
[server]
listen = "127.0.0.1:0"
max_connections = {max_connections}
{per_ip_line}header_read_timeout = "{header_read_timeout}"
shutdown_grace = "1s"
[log]
level = "warn"
access_log = false
[upstreams.up]
url = "http://127.0.0.1:9"
[policies.p]
allowed_origins = ["https://app.example"]
[[routes]]
upstream = "up"
policy = "p"
"""


async def open_from(src, addr, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((src, 0))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def attacker(i, addr, mode, until, stats):
    src = f"127.0.0.{2 + i % 8}"
    while time.monotonic() < until:
        try:
            reader, writer = await open_from(src, addr, 5)
        except (OSError, asyncio.TimeoutError):
            stats["connect_failed"] += 1
            await asyncio.sleep(0.2)
            continue
        stats["opened"] += 1
        closed = asyncio.ensure_future(reader.read(1))
        try:
            if mode == "lockout":
                writer.write(b"P")
                await writer.drain()
                await asyncio.wait_for(closed, max(0.0, until - time.monotonic()))
            else:
                for b in HEAD:
                    writer.write(bytes([b]))
                    await writer.drain()
                    done, _ = await asyncio.wait({closed}, timeout=2.0)
                    if done or time.monotonic() >= until:
                        break
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            closed.cancel()
            writer.close()


async def legit(addr, until, timeout, out):
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            async def one():
                reader, writer = await open_from("127.0.0.1", addr, timeout)
                try:
                    writer.write(PREFLIGHT)
                    await writer.drain()
                    line = await reader.readline()
                    if not line.startswith(b"HTTP/1.1 204"):
                        raise OSError(f"unexpected answer {line!r}")
                finally:
                    writer.close()

            await asyncio.wait_for(one(), timeout)
            out["ok"].append(time.monotonic() - start)
        except asyncio.TimeoutError:
            out["timeouts"] += 1
        except OSError:
            out["errors"] += 1
            await asyncio.sleep(0.05)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/corsgate")
    ap.add_argument("--max-connections", type=int, default=200)
    ap.add_argument("--per-ip", type=int, default=None, help="omit for a binary without the key")
    ap.add_argument("--header-read-timeout", default="10s")
    ap.add_argument("--attackers", type=int, default=300)
    ap.add_argument("--attack", choices=["slow", "lockout", "none"], default="slow")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    assert args.attackers <= 2000 and args.duration <= 120, "keep it bounded"

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config(args.max_connections, args.per_ip, args.header_read_timeout))
        path = f.name
    proc = subprocess.Popen([args.binary, "run", "-c", path], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            sys.exit(f"corsgate did not start: {line!r}")
        addr = (m.group(1), int(m.group(2)))
        stats = {"opened": 0, "connect_failed": 0}
        end = time.monotonic() + args.warmup + args.duration
        attackers = []
        if args.attack != "none":
            attackers = [
                asyncio.ensure_future(attacker(i, addr, args.attack, end, stats))
                for i in range(args.attackers)
            ]
        await asyncio.sleep(args.warmup)
        out = {"ok": [], "timeouts": 0, "errors": 0}
        await asyncio.gather(*(legit(addr, end, args.timeout, out) for _ in range(args.clients)))
        for a in attackers:
            a.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        ok = out["ok"]
        total = len(ok) + out["timeouts"] + out["errors"]
        print(
            f"attack={args.attack} attackers={args.attackers} max_connections={args.max_connections} "
            f"per_ip={args.per_ip} | requests={total} ok={len(ok)} timeouts={out['timeouts']} "
            f"errors={out['errors']} p50={pct(ok, 50) * 1000:.1f}ms p99={pct(ok, 99) * 1000:.1f}ms "
            f"max={max(ok, default=float('nan')) * 1000:.1f}ms | attacker connections opened="
            f"{stats['opened']} connect_failed={stats['connect_failed']}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(path)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Overload shedding on a release build (RELIABILITY 21): a flood of N concurrent requests
against a gateway capped at `max_in_flight`, each held for about a second by the harness's
mock (a paced stream), and how fast the excess is refused.

    bench/overload.sh            # builds nothing: GW_BIN (default target/release/gatehouse)

Every connection is opened first; then every request is written at once, and each one's time
from its last byte written to its status line read is measured. Prints the count of each
status and the latency percentiles of the 503s and of the 200s' heads.
"""

import asyncio
import os
import statistics
import sys
import time

PORT = int(os.environ.get("GW_PORT", "28400"))
N = int(os.environ.get("FLOOD", "2000"))
BODY = (
    b'{"model":"bench-model","stream":true,'
    b'"messages":[{"role":"user","content":"PACE_MS=50"}]}'
)
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def one(start: asyncio.Event, results: list) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    except OSError as e:
        results.append(("connect-error", 0.0, str(e)))
        return
    await start.wait()
    t0 = time.perf_counter()
    writer.write(REQUEST)
    try:
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        took = time.perf_counter() - t0
        parts = line.split()
        status = parts[1].decode() if len(parts) > 1 else "closed"
        results.append((status, took, ""))
    except (OSError, asyncio.TimeoutError) as e:
        results.append(("error", time.perf_counter() - t0, type(e).__name__))
    finally:
        writer.close()


def pct(xs: list, p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000 if xs else float("nan")


async def main() -> None:
    start = asyncio.Event()
    results: list = []
    tasks = [asyncio.create_task(one(start, results)) for _ in range(N)]
    await asyncio.sleep(1.0)  # every connection open (the gateway holds them idle)
    start.set()
    await asyncio.gather(*tasks)
    by: dict = {}
    for status, took, _ in results:
        by.setdefault(status, []).append(took)
    print(f"flood of {N}: " + ", ".join(f"{k}: {len(v)}" for k, v in sorted(by.items())))
    for k, v in sorted(by.items()):
        print(
            f"  {k}: p50 {pct(v, 50):.1f} ms, p99 {pct(v, 99):.1f} ms, "
            f"max {max(v) * 1000:.1f} ms, mean {statistics.mean(v) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Find what blocks Turnout's event loop (the tail of its latency) without touching its code.

``install(env, tmp, report)`` puts a ``sitecustomize`` on the server's ``PYTHONPATH``. In the server
it wraps ``uvicorn.Server.serve`` with a 1 ms heartbeat task and a watchdog thread: when the
heartbeat is late by more than ``STALL_MS`` the watchdog grabs the loop thread's Python stack
(the switch interval is lowered to 1 ms so it gets the GIL mid-stall). Every 0.5 s it writes
``report`` (JSON): a histogram of heartbeat lateness and the stacks seen during stalls.
``summary(report)`` prints them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

STALL_MS = 3.0

SITECUSTOMIZE = """
import asyncio, gc, json, os, sys, threading, time
from collections import Counter

_REPORT, _STALL = os.environ["TURNOUT_BENCH_STALLS"], float(os.environ["TURNOUT_BENCH_STALL_MS"]) / 1000


def _install():
    import uvicorn.server
    original = uvicorn.server.Server.serve

    async def serve(self, sockets=None):
        sys.setswitchinterval(0.001)
        state = {"beat": time.perf_counter(), "stacks": Counter(), "lag": Counter(), "seen": None}
        main, done = threading.get_ident(), threading.Event()
        gcs = {g: [0, 0.0, 0.0] for g in range(3)}  # per generation: count, total ms, max ms
        gc_start = [0.0]

        def on_gc(phase, info):
            if phase == "start":
                gc_start[0] = time.perf_counter()
                return
            ms, entry = (time.perf_counter() - gc_start[0]) * 1000, gcs[info["generation"]]
            entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + ms, max(entry[2], ms)

        gc.callbacks.append(on_gc)

        async def heartbeat():
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                state["beat"] = now
                late = (now - before - 0.001) * 1000
                state["lag"][min(int(late), 100)] += 1

        def write():
            data = {"lag_ms": dict(state["lag"]), "stacks": state["stacks"].most_common(40), "gc": gcs}
            with open(_REPORT + ".tmp", "w") as out:
                json.dump(data, out)
            os.replace(_REPORT + ".tmp", _REPORT)

        def watchdog():
            written = time.perf_counter()
            while not done.wait(0.0005):
                if time.perf_counter() - written > 0.5:  # uvicorn dies by its re-raised signal: no atexit
                    write()
                    written = time.perf_counter()
                behind = time.perf_counter() - state["beat"]
                if behind > _STALL and state["seen"] != state["beat"]:
                    state["seen"] = state["beat"]
                    frame = sys._current_frames().get(main)
                    names = []
                    while frame is not None and len(names) < 10:
                        code = frame.f_code
                        where = "/".join(code.co_filename.split("/")[-2:])
                        names.append(f"{code.co_name} ({where}:{frame.f_lineno})")
                        frame = frame.f_back
                    state["stacks"][" <- ".join(names)] += 1

        task = asyncio.get_running_loop().create_task(heartbeat())
        threading.Thread(target=watchdog, daemon=True).start()
        try:
            await original(self, sockets)
        finally:
            done.set()
            task.cancel()
            write()

    uvicorn.server.Server.serve = serve


_install()
"""


def install(env: dict[str, str], tmp: Path, report: Path) -> dict[str, str]:
    """``env`` for a server that records its loop stalls into ``report``."""
    folder = tmp / "stalls-site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = [str(folder), *filter(None, [env.get("PYTHONPATH")])]
    return {
        **env,
        "PYTHONPATH": ":".join(path),
        "TURNOUT_BENCH_STALLS": str(report),
        "TURNOUT_BENCH_STALL_MS": str(STALL_MS),
    }


def summary(report: Path, top: int = 8) -> None:
    """Print the lateness histogram and the most frequent stall stacks."""
    if not report.exists():
        print(f"no stall report at {report} (did the server stop cleanly?)")
        return
    data = json.loads(report.read_text())
    lag = Counter({int(k): v for k, v in data["lag_ms"].items()})
    beats = sum(lag.values())
    print(f"\nheartbeat (1 ms) lateness over {beats} beats:")
    for lo, hi in ((0, 1), (1, 3), (3, 5), (5, 10), (10, 20), (20, 50), (50, 101)):
        n = sum(v for k, v in lag.items() if lo <= k < hi)
        print(f"  {lo:>3}-{hi:<3} ms late: {n:7d}  ({100 * n / max(1, beats):5.2f}%)")
    for gen, (count, total, worst) in sorted(data.get("gc", {}).items()):
        print(f"  gc generation {gen}: {count} collections, {total:.1f} ms in all, longest {worst:.1f} ms")
    stacks = data["stacks"]
    print(
        f"\nloop-thread stacks caught during stalls > {STALL_MS:g} ms ({sum(n for _, n in stacks)} stalls):"
    )
    for stack, n in stacks[:top]:
        print(f"{n:6d}  {stack}")

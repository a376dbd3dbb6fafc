"""A/B of Turnout's CPU per request: a git ref (A) against the working tree (B), in one run.

On this kind of VM, the same code measures 310-445 us per request from one saturation run to the
next, so a 3% change is invisible in ``bench/gateway.py``. Here both versions run at once, each
``turnout serve`` on its own SQLite file, on the same pinned core and in front of the same
simulator. wrk loads them in alternating short rounds, and the result is the median of the
per-round B/A ratios, so drifts in the VM's speed hit both alike. ``A`` is checked out into a
temporary git worktree and imported through ``PYTHONPATH``; both use this checkout's ``.venv``.
An A/A run (``--base`` at the working tree's own commit, no changes) shows the noise floor: twice
1.04-1.06 with single rounds from 0.92 to 1.24 on the 2-core sandbox, so trust only larger changes.

``--env-a``/``--env-b KEY=VALUE`` set a variable on one side only, so that with ``--base`` at the
working tree's commit the A/B compares settings on the same code (``{sink}`` in a value is the URL
of ``bench/otlp_sink.py``, started on the load core), e.g. the cost of tracing:

    .venv/bin/python bench/gateway_ab.py --env-b OTEL_EXPORTER_OTLP_ENDPOINT={sink}

    .venv/bin/python bench/gateway_ab.py [--base HEAD] [--rounds 12] [--seconds 3] [--connections 32]
        [--redis] [--env-a KEY=VALUE ...] [--env-b KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from common import BIN, ROOT, workspace
from gateway_load import Target, ensure_wrk, wrk
from gateway_procs import Cores, Proc, configure_simulators, otlp_sink, redis_server, simulator, turnout


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """``ref`` in a temporary detached git worktree (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="turnout-ab-") as tmp:
        path = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), ref], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def imported_from(env: dict[str, str]) -> str:
    """Where ``turnout`` is imported from under ``env`` (to prove each side runs its own code)."""
    code = "import turnout, pathlib; print(pathlib.Path(turnout.__file__).parent)"
    return subprocess.run(
        [str(BIN / "python"), "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", default="HEAD", help="git ref measured as A")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk seconds per round and side")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="both sides with spend control (a budget and an rpm limit on the key) in one Redis of the "
        "benchmark's own on the load core, each under its own key prefix",
    )
    for side in ("a", "b"):
        parser.add_argument(
            f"--env-{side}",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"a variable for side {side.upper()} only ({{sink}}: a local OTLP receiver's URL)",
        )
    args = parser.parse_args()
    extra = {"A": _pairs(args.env_a), "B": _pairs(args.env_b)}
    wrk_bin = ensure_wrk()
    if wrk_bin is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    cores = Cores.pick()
    if cores.load is not None:
        os.sched_setaffinity(0, {cores.load})
    load = cores.prefix(cores.load)
    with ExitStack() as stack:
        base = stack.enter_context(checkout(args.base))
        tmp, _ = stack.enter_context(workspace("sqlite"))
        upstream = stack.enter_context(simulator(tmp, "sim-upstream", cores.load, cores))
        redis = stack.enter_context(redis_server(tmp, cores)) if args.redis else None
        if any("{sink}" in value for side in extra.values() for value in side.values()):
            sink = stack.enter_context(otlp_sink(tmp, cores))
            extra = {n: {k: v.replace("{sink}", sink.url) for k, v in e.items()} for n, e in extra.items()}
        sides: dict[str, tuple[Proc, Target, Path]] = {}
        for name, src in (("A", base / "src"), ("B", ROOT / "src")):
            side_tmp, env = stack.enter_context(workspace("sqlite"))
            env = {**env, "PYTHONPATH": str(src), **extra[name]}
            if redis is not None:
                env |= {"TURNOUT_REDIS_URL": redis.url, "TURNOUT_REDIS_PREFIX": f"ab-{name}:"}
            label = args.base if name == "A" else "working tree"
            print(f"{name}: {label} {extra[name] or ''}, turnout imported from {imported_from(env)}")
            gateway, key = stack.enter_context(
                turnout(side_tmp, env, upstream.url, cores, spend_controls=args.redis)
            )
            sides[name] = (gateway, Target(name, gateway.url, key, "sim/gpt-4o-mini"), side_tmp)
        configure_simulators([upstream], tokens_per_second=0, reply_tokens=16)
        for _gateway, target, side_tmp in sides.values():  # warm-up
            wrk(wrk_bin, target, args.connections, 2, side_tmp, load)
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        rps: dict[str, list[float]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                gateway, target, side_tmp = sides[name]
                before = gateway.cpu_s()
                sat = wrk(wrk_bin, target, args.connections, args.seconds, side_tmp, load)
                cpu[name].append((gateway.cpu_s() - before) / max(sat.ok, 1) * 1e6)
                rps[name].append(sat.rps)
            print(f"round {round_ + 1}: A {cpu['A'][-1]:.0f} us/req, B {cpu['B'][-1]:.0f} us/req", flush=True)
    cpu_ratio = [b / a for a, b in zip(cpu["A"], cpu["B"], strict=True)]
    rps_ratio = [b / a for a, b in zip(rps["A"], rps["B"], strict=True)]
    print(
        f"\nCPU per request: A {statistics.median(cpu['A']):.0f} us, B {statistics.median(cpu['B']):.0f} us; "
        f"B/A median {statistics.median(cpu_ratio):.3f} (rounds {min(cpu_ratio):.3f}-{max(cpu_ratio):.3f})"
    )
    print(
        f"requests/s: A {statistics.median(rps['A']):.0f}, B {statistics.median(rps['B']):.0f}; "
        f"B/A median {statistics.median(rps_ratio):.3f} (rounds {min(rps_ratio):.3f}-{max(rps_ratio):.3f})"
    )


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env-a/--env-b take KEY=VALUE, not {item!r}")
        out[key] = value
    return out


if __name__ == "__main__":
    main()

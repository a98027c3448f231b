"""The fault schedule of a chaos run, played while the cases flow (docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from secondread_cli import stack
from tests.chaos.toxiproxy import Toxiproxy


@dataclass
class Fault:
    name: str
    run: Callable[[], None]


@dataclass
class Schedule:
    """Faults one after another, ``gap_s`` apart; each is logged with its time and outcome."""

    faults: list[Fault]
    gap_s: float
    log: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    done: list[tuple[str, float, str]] = field(default_factory=list)

    def play(self) -> None:
        t_start = time.monotonic()
        for fault in self.faults:
            if self.stop.wait(self.gap_s):
                return
            t0 = time.monotonic()
            self.log(f"fault: {fault.name} ...")
            try:
                fault.run()
                outcome = "ok"
            except Exception as exc:  # a fault that could not be played is reported, not hidden
                outcome = f"failed: {type(exc).__name__}: {exc}"
            took = time.monotonic() - t0
            self.done.append((fault.name, t0 - t_start, outcome))
            self.log(f"fault: {fault.name} {outcome} ({took:.0f} s)")


def secondread(*args: str) -> None:
    """The stack command in its own process, as an operator runs it (and so with the code as
    it is on disk, not as this long run imported it)."""
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", *args],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if done.returncode == 0:
        return
    if args[0] == "up":
        # `up` also fails when another component is unhealthy at that moment (the services,
        # while PostgreSQL was down): what counts here is the component it was asked to start.
        wanted = {n for n in args[1:]}
        up = {s.name for s in stack.status() if s.healthy}
        if all(any(u == w or u.startswith(f"{w}-") for u in up) for w in wanted):
            return
    raise RuntimeError(f"secondread {' '.join(args)}: {(done.stderr or done.stdout)[-300:]}")


def kill_and_restart(name: str) -> Fault:
    one = name if "-" in name else f"{name}-1"  # a bare service name means all its replicas

    def run() -> None:
        st = next((s for s in stack.status() if s.name == name), None)
        if st is None or st.pid is None:
            raise RuntimeError(f"{name} is not running")
        os.kill(st.pid, signal.SIGKILL)
        time.sleep(1.0)
        secondread("up", one)

    return Fault(f"SIGKILL {name}, restart", run)


def stop_for(name: str, seconds: float) -> Fault:
    def run() -> None:
        secondread("down", name)
        time.sleep(seconds)
        secondread("up", name)

    return Fault(f"stop {name} for {seconds:g} s", run)


def restart(name: str) -> Fault:
    def run() -> None:
        secondread("down", name)
        secondread("up", name)

    return Fault(f"restart {name}", run)


def toxic(proxy: Toxiproxy, target: str, kind: str, seconds: float, **attributes: object) -> Fault:
    def run() -> None:
        with proxy.toxic(target, f"chaos-{kind}", kind, **attributes):
            time.sleep(seconds)

    label = ", ".join(f"{k}={v}" for k, v in attributes.items())
    return Fault(f"{kind} ({label}) on {target} for {seconds:g} s", run)


def schedule(
    services: list[str], proxy: Toxiproxy, proxies: list[str], *, short: bool
) -> list[Fault]:
    """Every replica of every service killed and restarted once; Kafka restarted; S3, the
    archive, PostgreSQL and SMTP stopped; latency and connection resets on every proxy.
    ``short`` (the form ``make test`` runs) keeps every kind of fault, with outages a quarter
    as long and one replica of each service killed instead of every one."""
    scale = 0.25 if short else 1.0
    victims = services
    if short:  # one replica of each service (alternating replica 1 and 2), not every one
        victims = [
            next((n for n in services if n == (f"{s}-2" if i % 2 else s)), s)
            for i, s in enumerate(dict.fromkeys(n.split("-")[0] for n in services))
        ]
    faults = [kill_and_restart(name) for name in victims]
    faults += [toxic(proxy, p, "latency", 20 * scale, latency=300, jitter=200) for p in proxies]
    faults += [
        restart("kafka"),
        stop_for("s3", 20 * scale),
        stop_for("orthanc", 20 * scale),
        stop_for("postgres", 10 * scale),
        stop_for("mailpit", 60 * scale),
    ]
    faults += [toxic(proxy, p, "reset_peer", 10 * scale, timeout=500) for p in proxies]
    return faults

"""``make chaos`` (``python -m tests.chaos``): N cases through the whole pipeline with two
replicas of every service, while the fault schedule plays; then the verdict.

The last line reads exactly
``cases N, delivered D, quarantined Q, dead-lettered X, lost L, duplicated U``
and the exit status is non-zero unless L and U are 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter

from secondread_cli import stack
from tests.chaos import faults, verify
from tests.chaos.toxiproxy import Proxy, Toxiproxy
from tests.chaos.workload import Workload

PROXIES = {
    "s3": Proxy("s3", 19000, 9000),
    "orthanc": Proxy("orthanc", 18042, 8042),
    "kafka": Proxy("kafka", 19092, 9094),
}
"""Between the services and Kafka (its FAULTS listener, which advertises the proxy), S3 and the
Orthanc archive."""
THROUGH_PROXIES = {
    "SECONDREAD_KAFKA_BOOTSTRAP": PROXIES["kafka"].address,
    "SECONDREAD_S3_ENDPOINT": PROXIES["s3"].address,
    "SECONDREAD_ORTHANC_URL": f"http://{PROXIES['orthanc'].address}",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def secondread(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"secondread {' '.join(args)} failed ({done.returncode})")


def replicas_up(n: int) -> list[str]:
    """(Re)start every service with ``n`` replicas under the current environment; the names
    of their components."""
    log(f"secondread up --replicas {n} (services restarted)")
    secondread("down", *[s for s in stack.SERVICES])
    secondread("up", "--replicas", str(n))
    return [s.name for s in stack.status() if s.name.split("-")[0] in stack.SERVICES]


def run(cases: int, instances: int, short: bool, timeout_s: float, faults_on: bool = True) -> int:
    folder = stack.stack_dir() / "chaos"
    t0 = time.monotonic()
    if not stack.healthy():
        stack.up(timeout=240)
    proxy = Toxiproxy(folder)
    proxy.start()
    saved = {k: os.environ.get(k) for k in THROUGH_PROXIES}
    work = Workload(cases, instances, folder / "cases", dicom_ports=[11112, 11113], log=log)
    try:
        for p in PROXIES.values():
            proxy.create(p)
        os.environ.update(THROUGH_PROXIES)  # every (re)start below goes through the proxies
        services = replicas_up(2)
        log(f"services: {', '.join(services)} (through Toxiproxy)")
        work.prepare()
        plan = faults.Schedule(
            faults.schedule(services, proxy, list(PROXIES), short=short) if faults_on else [],
            gap_s=1.0 if short else 4.0,
            log=log,
        )
        threads = [
            threading.Thread(target=work.feed, args=(60.0 if short else 300.0,), name="feed"),
            threading.Thread(target=work.read, name="reader", daemon=True),
            threading.Thread(target=plan.play, name="faults"),
        ]
        for t in threads:
            t.start()
        threads[0].join()
        log(f"all {cases} cases sent ({sum(1 for s in work.submissions if s.case_id)} accepted)")
        threads[2].join()
        log("fault schedule played; waiting for every case to finish")
        deadline = time.monotonic() + timeout_s
        outcomes = verify.terminal_states(work.submissions)
        while time.monotonic() < deadline and any(not o.terminal for o in outcomes.values()):
            time.sleep(5)
            outcomes = verify.terminal_states(work.submissions)
        work.stop.set()
        verify.check_once(outcomes, work.submissions)
        verify.check_objects(outcomes)
        leaks = verify.zone_leaks(outcomes)
    finally:
        work.stop.set()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        log("restoring the stack: one replica of each service, no proxies")
        replicas_up(1)
        proxy.stop()
    return report(work, outcomes, plan, leaks, time.monotonic() - t0)  # the verdict: last


def report(
    work: Workload,
    outcomes: dict[str, verify.Outcome],
    plan: faults.Schedule,
    leaks: list[str],
    took_s: float,
) -> int:
    print("\nfault schedule")
    for name, at, outcome in plan.done:
        print(f"  +{at:6.1f} s  {name}: {outcome}")
    by: Counter[tuple[str, str]] = Counter()
    for o in outcomes.values():
        by[(o.sub.door, o.terminal or "lost")] += 1
    kinds = ["delivered", "quarantined", "dead-lettered", "lost"]
    print(f"\n{'door':10} " + " ".join(f"{k:>14}" for k in kinds))
    for door in ("upload", "c-store"):
        print(f"{door:10} " + " ".join(f"{by[(door, k)]:>14}" for k in kinds))
    refused = [s for s in work.submissions if not s.case_id]
    problems = [(o, p) for o in outcomes.values() for p in o.problems]
    for o in outcomes.values():
        if not o.terminal:
            print(f"lost: case {o.sub.case_id} ({o.sub.door}) last state {o.state or 'none'}")
        if o.reason:
            print(f"dead letter: case {o.sub.case_id}: {o.reason}")
        for d in o.duplicates:
            print(f"duplicated: case {o.sub.case_id}: {d}")
    for o, p in problems:
        print(f"missing: case {o.sub.case_id}: {p}")
    for leak in leaks:
        print(f"identifier in the clear zone: {leak}")
    for s in refused:
        print(f"not accepted by ingest (the client gave up): {s.n}: {s.refused}")
    print(
        f"took {took_s:.0f} s; {len(refused)} submissions not accepted; "
        f"{len(problems)} objects missing; {len(leaks)} identifiers in the clear zone"
    )
    counts = Counter(o.terminal or "lost" for o in outcomes.values())
    lost = counts["lost"] + sum(1 for o in outcomes.values() if o.problems and o.terminal)
    duplicated = sum(1 for o in outcomes.values() if o.duplicates)
    print(f"cases {len(outcomes)}, delivered {counts['delivered']}, quarantined "
          f"{counts['quarantined']}, dead-lettered {counts['dead-lettered']}, lost {lost}, "
          f"duplicated {duplicated}")  # fmt: skip
    return 0 if lost == 0 and duplicated == 0 and not leaks else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--cases", type=int, default=int(os.environ.get("CHAOS_CASES", "50")))
    parser.add_argument("--instances", type=int, default=3, help="instances per case")
    parser.add_argument("--short", action="store_true", help="shorter outages (make test)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="how long to wait for the cases after the faults (s)")  # fmt: skip
    parser.add_argument("--no-faults", action="store_true",
                        help="the same run without the fault schedule (a baseline)")  # fmt: skip
    args = parser.parse_args(argv)
    return run(args.cases, args.instances, args.short, args.timeout, not args.no_faults)


if __name__ == "__main__":
    sys.exit(main())

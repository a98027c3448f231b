"""Reading a CT series in the viewer: time to the first image and to the whole series, through
reporting's DICOMweb proxy in headless Chromium (OHIF), beside references measured in the same
run: the same frames fetched straight from the archive's DICOMweb, and through the proxy without
a browser (httpx, 6 requests at a time like a browser's connection limit).

The series is a synthetic phantom (tests/phantom.py), stored in the archive as deidentify writes
it, and put on a reader's worklist; the case is declined at the end. Needs the local stack.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.browser import CHROMIUM_ARGS, chromium_path
from tests.e2e.identity import TOKENS
from tests.e2e.reporting_support import ORTHANC, REPORTING, put_on_worklist
from tests.phantom import ct_series

READER = os.environ.get("READER", "rad-novak")
KEYCLOAK = "http://127.0.0.1:8180"
ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@dataclass
class Timing:
    first: float
    full: float
    start: float = 0.0
    """In the browser: from navigation to OHIF's first DICOMweb request (the app started)."""


def store(instances: list[bytes]) -> str:
    def one(data: bytes) -> str:
        r = httpx.post(f"{ORTHANC}/instances", content=data, timeout=60)
        r.raise_for_status()
        return str(r.json()["ParentStudy"])

    with ThreadPoolExecutor(4) as pool:
        [study_id] = set(pool.map(one, instances))
    return study_id


async def fetch_series(root: str, study: str, series: str, headers: dict[str, str]) -> Timing:
    """The series' metadata, then every frame, 6 at a time, nearest the first slice first."""
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        meta = await http.get(f"{root}/studies/{study}/series/{series}/metadata")
        meta.raise_for_status()
        sops = [m["00080018"]["Value"][0] for m in
                sorted(meta.json(), key=lambda m: m["00200013"]["Value"][0])]  # fmt: skip
        first: list[float] = []
        queue = list(sops)

        async def worker() -> None:
            while queue:
                sop = queue.pop(0)
                url = f"{root}/studies/{study}/series/{series}/instances/{sop}/frames/1"
                r = await http.get(url, headers={"Accept": ACCEPT})
                r.raise_for_status()
                if not first:
                    first.append(time.monotonic() - t0)

        await asyncio.gather(*(worker() for _ in range(6)))
    return Timing(first[0], time.monotonic() - t0)


PIXELS = """() => Array.from(document.querySelectorAll('canvas.cornerstone-canvas')).some(c => {
  if (!c.width || !c.height) return false;
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(c, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 31) seen.add(data[i]);
  return seen.size > 10;
})"""


def in_browser(url: str, series: str, count: int, rounds: int) -> list[Timing]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 860})
        page = context.new_page()
        page.goto(f"{REPORTING}/viewer/signin?next=/viewer/")  # sign in once, not timed
        page.wait_for_url(f"{KEYCLOAK}/realms/secondread/**", timeout=30_000)
        page.fill("#username", READER)
        page.fill("#password", f"demo-{READER}")
        page.click("#kc-login")
        page.wait_for_url(f"{REPORTING}/viewer/**", timeout=30_000)
        for _ in range(rounds):
            out.append(_one_round(context, url, series, count))
        browser.close()
    return out


def _one_round(context: Any, url: str, series: str, count: int) -> Timing:
    page = context.new_page()
    frames: set[str] = set()
    failed: list[str] = []

    def done(request: Any) -> None:
        # cornerstone streams each frame with fetch() and cancels the reader once it has the
        # whole body, which Chromium reports as a failed (ERR_ABORTED) request: count a frame
        # when its answer was 200 and arrived in full, however the request ended
        if f"/series/{series}/" not in request.url or "/frames/" not in request.url:
            return
        response = request.response()
        if response is not None and response.status == 200 and request.timing["responseEnd"] > 0:
            frames.add(request.url)
        else:
            failed.append(f"{request.url[-60:]}: {request.failure}")

    page.on("requestfinished", done)
    page.on("requestfailed", done)
    asked: list[float] = []
    page.on("request", lambda r: asked.append(time.monotonic()) if "/dicom-web/" in r.url else None)
    t0 = time.monotonic()
    page.goto(url)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.wait_for_function(PIXELS, timeout=120_000, polling=50)
    except Exception:
        page.screenshot(path="/tmp/viewer-bench-failure.png")  # for a person to look at
        sys.exit(f"no image after 120 s at {page.url}: {errors[:5]} (see /tmp/viewer-bench-*.png)")
    first = time.monotonic() - t0
    deadline = time.monotonic() + 300
    while len(frames) < count and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    if len(frames) < count:
        sys.exit(f"the viewer loaded {len(frames)} of {count} slices (failed: {failed[:3]})")
    full = time.monotonic() - t0
    page.close()
    return Timing(first, full, asked[0] - t0)


def main() -> None:
    count = int(os.environ.get("N", "200"))
    size = int(os.environ.get("SIZE", "512"))
    rounds = int(os.environ.get("ROUNDS", "3"))
    pseudonym = f"SR{uuid.uuid4().hex[:12].upper()}"
    series, made = ct_series(pseudonym, count=count, size=size, seed=uuid.uuid4().hex)
    instances = list(made)
    mb = sum(len(i) for i in instances) / 1e6
    t0 = time.monotonic()
    study_id = store(instances)
    print(f"stored {count} x {size}x{size} CT ({mb:.0f} MB) in the archive "
          f"in {time.monotonic() - t0:.1f} s", flush=True)  # fmt: skip
    case = put_on_worklist(READER, patient_pseudonym=pseudonym, orthanc_study_ids=[study_id],
                           study_instance_uids=[series.study_uid])  # fmt: skip
    try:
        view = httpx.get(f"{REPORTING}/v1/cases/{case.case_id}", headers=TOKENS.auth(READER))
        url = view.json()["viewer_url"]
        direct, proxied, viewer = [], [], []
        auth = TOKENS.auth(READER)
        for _ in range(rounds):
            uids = (series.study_uid, series.series_uid)
            # the headers the proxy sends the archive (no compression)
            plain = {"Accept-Encoding": "identity"}
            direct.append(asyncio.run(fetch_series(f"{ORTHANC}/dicom-web", *uids, plain)))
            proxied.append(asyncio.run(fetch_series(f"{REPORTING}/dicom-web", *uids, auth)))
        viewer = in_browser(url, series.series_uid, count, rounds)
    finally:
        httpx.post(f"{REPORTING}/v1/cases/{case.case_id}/decline", headers=TOKENS.auth(READER),
                   json={"reason": "benchmark clean-up"})  # fmt: skip

    def row(name: str, timings: list[Timing]) -> str:
        best_first = min(t.first for t in timings)
        best_full = min(t.full for t in timings)
        median_full = sorted(t.full for t in timings)[len(timings) // 2]
        start = min(t.start for t in timings)
        return (f"{name:<38} {start:>8.2f} s {best_first:>9.2f} s {best_full:>9.2f} s "
                f"{median_full:>9.2f} s {mb / best_full:>6.0f} MB/s")  # fmt: skip

    print(f"\nreading a {count}-slice {size}x{size} CT series ({mb:.0f} MB), best of {rounds}:")
    print("(from the request, or in the browser from navigation; 'app start' is OHIF's first")
    print(" DICOMweb request, 0 without a browser)")
    print(f"{'':<38} {'app start':>10} {'first image':>11} {'full series':>11} {'median':>11}"
          f" {'rate':>11}")  # fmt: skip
    print(row("archive DICOMweb straight (httpx)", direct))
    print(row("reporting /dicom-web proxy (httpx)", proxied))
    print(row("OHIF in Chromium, through the proxy", viewer))


if __name__ == "__main__":
    main()

"""The delivery baseline: a plain httpx loop sending signed POSTs to the sink, keep-alive on.

Run as `python -m bench.httpx_loop --url .. --ca .. --secret-env VAR --count N --run R`;
prints one line `BENCH_RESULT {json}`. It signs each body the way a destination is
signed (Things-Message-Token) and sends one request after another on one client, which
is what a simple, well-written sender does.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import time
import uuid

import httpx

from bench.payloads import kpn_token, senml_pack


def httpx_loop_run(*, url: str, ca: str, secret: str, count: int, run: str, start: int = 0) -> dict:
    bodies = [
        senml_pack(run=run, seq=seq, device=seq % 100, base_time=int(time.time()))
        for seq in range(start, start + count)
    ]
    plug = str(uuid.uuid4())
    context = ssl.create_default_context(cafile=ca)
    ok = 0
    with httpx.Client(verify=context, timeout=10.0) as client:
        began = time.monotonic()
        for body in bodies:
            headers = {
                "Content-Type": "application/json",
                "Things-Message-Token": kpn_token(body=body, secret=secret),
                "Things-Plug-UUID": plug,
            }
            response = client.post(url, content=body, headers=headers)
            ok += response.status_code == 200
        elapsed = time.monotonic() - began
    return {"count": count, "ok": ok, "elapsed": elapsed, "rate": count / elapsed if elapsed else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--secret-env", required=True, help="name of the environment variable holding the secret")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--start", type=int, default=0)
    args = parser.parse_args()
    result = httpx_loop_run(
        url=args.url, ca=args.ca, secret=os.environ[args.secret_env], count=args.count, run=args.run, start=args.start
    )
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

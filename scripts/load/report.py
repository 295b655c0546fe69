"""Results of scripts/load.sh: one JSON line per run, and the table of medians at the end.

  report.py wrk CASE ROUND             < wrk's output (tokens.lua prints the JSON line)
  report.py h2load CASE ROUND OUTPUT LOG
  report.py summary RESULTS_JSONL

`wrk` and `h2load` print the run's line, or exit 2 when any response was not a 2xx or any
request failed: a denied or broken path must never pass as a rate.
"""

import json
import re
import statistics
import sys

LABELS = {
    "noauth": "no auth (Envoy alone)",
    "floor": "ext_authz → floor",
    "floor_identity": "ext_authz → floor answering like claimgate (constant identity)",
    "claimgate_warm": "ext_authz → claimgate, warm (one token)",
    "claimgate_unix": "ext_authz → claimgate over a Unix socket, warm",
    "claimgate_lean": "ext_authz → claimgate, warm, `--allow-metadata decision-id`",
    "claimgate_cold": "ext_authz → claimgate, cold (every token new)",
    "wasm": "claimgate in-proxy (proxy-wasm), warm (one token)",
    "jwt_rbac": "jwt_authn + rbac",
    "jwt_rbac_cached": "jwt_authn (JWT cache on) + rbac",
    "grpc_floor": "floor",
    "grpc_claimgate_warm": "claimgate, warm (one token)",
}
ENVOY_CASES = [
    "noauth",
    "floor",
    "floor_identity",
    "claimgate_warm",
    "claimgate_unix",
    "claimgate_lean",
    "claimgate_cold",
    "wasm",
    "jwt_rbac",
    "jwt_rbac_cached",
]
GRPC_CASES = ["grpc_floor", "grpc_claimgate_warm"]


def fail(case, why):
    print(f"load: {case}: {why}; not a measurement of allowed requests", file=sys.stderr)
    sys.exit(2)


def emit(run):
    print(json.dumps(run))
    print(
        f"load:   {run['case']:<20} {run['rps']:>9,.0f} req/s"
        f"  p50 {run['p50_us'] / 1000:6.2f} ms  p99 {run['p99_us'] / 1000:6.2f} ms",
        file=sys.stderr,
    )


def from_wrk(case, rnd):
    out = sys.stdin.read()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        fail(case, f"wrk printed no result:\n{out}")
    run = json.loads(lines[-1])
    errors = run["connect_errors"] + run["read_errors"] + run["write_errors"] + run["timeouts"]
    if run["non2xx"] or errors:
        fail(case, f"{run['non2xx']} responses >= 400 and {errors} socket errors or timeouts")
    if run["requests"] == 0:
        fail(case, "no request completed")
    emit({"case": case, "round": rnd, **run})


def from_h2load(case, rnd, output, log):
    text = open(output).read()
    finished = re.search(r"finished in ([\d.]+)(m?s)", text)
    reqs = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (finished and reqs and codes):
        fail(case, f"cannot read h2load's output:\n{text}")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    done, failed, errored, timeouts = (int(reqs.group(i)) for i in (3, 5, 6, 7))
    non2xx = sum(int(codes.group(i)) for i in (2, 3, 4))
    if non2xx or failed or errored or timeouts:
        fail(case, f"{non2xx} non-2xx, {failed} failed, {errored} errored, {timeouts} timed out")
    # h2load reports no percentiles; its per-request log has each request's latency in µs.
    latencies = sorted(int(l.split("\t")[2]) for l in open(log) if l.strip())
    if not latencies or done == 0:
        fail(case, "no request completed")
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    emit(
        {
            "case": case,
            "round": rnd,
            "requests": done,
            "duration_us": int(seconds * 1e6),
            "rps": done / seconds,
            "p50_us": p(0.50),
            "p99_us": p(0.99),
            "non2xx": 0,
        }
    )


def ms(us):
    return f"{us / 1000:.2f} ms"


def table(title, cases, floor, runs):
    present = [c for c in cases if c in runs]
    if not present:
        return
    med = {
        c: {k: statistics.median(r[k] for r in runs[c]) for k in ("rps", "p50_us", "p99_us")}
        for c in present
    }
    print(f"\n### {title}\n")
    print("| case | req/s | p50 | p99 | req/s ÷ floor | p99 ÷ floor | req/s over rounds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for c in present:
        m = med[c]
        spread = "–".join(f"{v:,.0f}" for v in (min(r["rps"] for r in runs[c]), max(r["rps"] for r in runs[c])))
        if floor in med:
            rps_ratio = f"{m['rps'] / med[floor]['rps']:.2f}"
            p99_ratio = f"{m['p99_us'] / med[floor]['p99_us']:.2f}"
        else:
            rps_ratio = p99_ratio = "n/a"
        print(
            f"| {LABELS.get(c, c)} | {m['rps']:,.0f} | {ms(m['p50_us'])} | {ms(m['p99_us'])} "
            f"| {rps_ratio} | {p99_ratio} | {spread} |"
        )


def summary(path):
    runs = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            runs.setdefault(r["case"], []).append(r)
    rounds = max((len(v) for v in runs.values()), default=0)
    print(f"\nMedians of {rounds} shuffled round(s); ratios are against the floor of the same table.")
    table("Through Envoy (wrk)", ENVOY_CASES, "floor", runs)
    table("gRPC alone (h2load)", GRPC_CASES, "grpc_floor", runs)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "wrk":
        from_wrk(*args)
    elif cmd == "h2load":
        from_h2load(*args)
    elif cmd == "summary":
        summary(*args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write docs/performance.md from measured numbers only.

Usage: report.py [RESULTS.json [OUT.md]] (defaults: bench/results/runtime.json,
docs/performance.md).

Inputs (all produced by `make bench`):
  bench/results/runtime.json      tvm-bench: round trips, policy cache, cold start, memory
  target/criterion/**/estimates.json   criterion: decide, render, principals, handler
  the release binaries and the deploy zip (sizes read from disk)

Every figure in the generated tables comes from those files. The only numbers
typed here are AWS list prices and the stated model assumptions, each named.
"""

import json
import math
import os
import sys
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# AWS list prices, us-east-1, as published on the pricing pages (checked 2026-11).
PRICE = {
    "lambda_arm_gb_s": 0.0000133334,  # Lambda duration, arm64, per GB-second
    "lambda_request": 0.20 / 1e6,  # Lambda, per request
    "http_api_request": 1.00 / 1e6,  # API Gateway HTTP API, first 300 M a month
    "ddb_wru": 0.625 / 1e6,  # DynamoDB on-demand, per write request unit
    "ddb_rru": 0.125 / 1e6,  # DynamoDB on-demand, per read request unit
    "sns_publish": 0.50 / 1e6,  # SNS, per publish (64 KB chunk)
    "ddb_storage_gb_month": 0.25,  # DynamoDB Standard table class, per GB-month
    "logs_ingest_gb": 0.50,  # CloudWatch Logs, Standard class, per GB ingested
}
MEMORY_GB = 128 / 1024
# Model assumptions, stated in the document.
ENVIRONMENT_LIFETIME_S = 2 * 3600  # a busy environment is recycled about every 2 h
BUSY_RPS = 1.0  # vends a second reaching one environment, busy case
SPARSE_GAP_S = 15 * 60  # sparse case: a vend every 15 min, each a cold start
REFERENCE_CALLS = 5  # the reference design's sequential calls (measured side by side, issue 17)
REFERENCE_WRITES, REFERENCE_READS = 3, 1  # its DynamoDB calls per vend: plain writes, strongly consistent reads
REFERENCE_INDEXES = 4  # full-projection GSIs on its session table, each written by the session's put
NEW_CONNECTION_RTTS = 2  # TCP + TLS 1.3 handshakes a rebuilt client pays
REFERENCE_FIRST_POLL_MS = 6.8  # the reference's exec to first runtime-API poll, measured here (issue 17)
# Before the overlap (issue 17): sequential calls per path, `make bench` of 2026-12-02 (bench/results at e1b1e26).
BEFORE = {"warm allow": 2.22, "allow, presigned identity": 3.22, "approved request": 3.30, "break-glass": 3.29,
          "denied": 0.0, "rate-limited": 1.11, "first request after cold start": 3.22}
BEFORE_FIRST_POLL_MS = 11.5  # the same run's exec to first poll (13.5 ms on the reference's machine)
# The loader's and init's share, step by step: tvm-bench's spawn-ab, 400 rounds
# of each build spawned in turn (same noise for all), on this 2-core machine.
INIT_STEPS = [
    ("compiled-in roots picked out of Mozilla's 150, chrono-tz (the previous results)", 5.67),
    ("timezones from jiff's compiled-in database instead of chrono-tz's tables", 4.83),
    ("one searcher per root name", 4.60),
    ("the SDK's region and credentials named from Lambda's environment", 4.33),
    ("Amazon's five roots compiled in as a PEM file", 4.12),
]
INIT_STEPS_FLOOR_MS = 1.11  # a Rust binary whose main only connects and polls
SESSION_RETENTION_DAYS = 30  # session items live until expiry + 30 days (DynamoDB TTL)
ITEM_OVERHEAD = 100  # bytes DynamoDB adds to each item and each index entry for storage
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs bills on top of each event's message
# Lambda's own lines per invocation in the JSON log format the templates set, as documented
# (request id and numbers of a typical warm vend); SystemLogLevel WARN drops both.
PLATFORM_LINES = [
    '{"time":"2026-12-03T06:00:00.000Z","type":"platform.start","record":{"requestId":"6d0b8a3c-6e0c-4d6a-9d0f-2a1c1f3e4b5a","version":"$LATEST"}}',
    '{"time":"2026-12-03T06:00:00.012Z","type":"platform.report","record":{"requestId":"6d0b8a3c-6e0c-4d6a-9d0f-2a1c1f3e4b5a","metrics":{"durationMs":11.42,"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":19},"status":"success"}}',
]



# What earlier changes measured by hand, kept across regenerations.
TRUST_MODEL_V2 = "The trust model v2 (checked on the dev VM, `cargo bench -p tvm-core --bench core -- decide`, alternating runs of the old and new code because this VM varies by ±15%): `decide` over 1,000 rules went from 18.2–20.3 µs to 21.1–24.8 µs, about 2 ns a rule for matching `principals` against the ARN without its IAM path as well (only callers with a path pay the second match) and the federated/vended checks. A profile with a time window (`decide/10-windowed`) scans the next hour's minute boundaries for the end of the grant: 21.3 µs as first written, 6.1–8.8 µs once the scan evaluates only the granting rule's window and the windows of the deny rules that match the caller, and profiles without windows skip it (`Profile::timed`)."
REVOCATION_V2 = "- Revocation v2 adds nothing to these paths: the three session tags travel in the same `AssumeRole`, and the revocation gates are the same items of the same transaction. A vend *by a session tvm vended* (only where a rule sets `allow_vended_sessions`) adds one `GetItem` of that session's record before the transaction. A revocation costs, per account and all accounts at once, `ListPolicyVersions`, at most one `DeletePolicyVersion` and `CreatePolicyVersion` (and an `AssumeRole` of the account's revoker every 13 minutes), plus two consistent reads and one conditional write of the revocation state; marking a caller's sessions is one `UpdateItem` each, 16 at a time."

def load(path):
    with open(path) as f:
        return json.load(f)


def criterion(name):
    """Median of a criterion benchmark in nanoseconds, or None."""
    path = os.path.join(ROOT, "target", "criterion", *name.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return load(path)["median"]["point_estimate"]


def size(path):
    full = os.path.join(ROOT, path)
    return os.path.getsize(full) if os.path.exists(full) else None


def mb(n):
    return "not built" if n is None else f"{n / 1e6:.2f} MB"


def us(ns):
    return "not run" if ns is None else f"{ns / 1e3:.2f} µs"


def verdict(ok):
    return "met" if ok else "**missed**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def billed_ms(ms):
    return max(1, math.ceil(ms))


def lambda_cost(ms):
    """Lambda duration + request charge for one invocation of `ms` billed."""
    return billed_ms(ms) / 1000 * MEMORY_GB * PRICE["lambda_arm_gb_s"] + PRICE["lambda_request"]


def session_indexes():
    """The sessions table's indexes (infra/tables.json): name -> key attributes."""
    tables = load(os.path.join(ROOT, "infra", "tables.json"))["tables"]
    return {name: [i["hash"]] + ([i["range"]] if "range" in i else [])
            for name, i in tables["sessions"]["indexes"].items()}


def indexed(put_attributes):
    """The indexes a put with these attributes writes: those whose keys it carries (the others are sparse)."""
    return [name for name, keys in session_indexes().items() if all(k in put_attributes for k in keys)]


def ddb_units(items):
    """(WRU, RRU) of one vend's DynamoDB work, from what the proxy saw.

    TransactWriteItems: 2 WRU per Put/Update item (each item under 1 KB, as
    measured), 2 RRU per ConditionCheck (a transactional read), and 1 WRU per
    index the put's item lands in (an index write of an item under 1 KB, at
    the standard rate: AWS documents no transactional surcharge for it; all
    three indexes project ALL). BatchGetItem: 1 RRU a key strongly
    consistent, 0.5 eventually.
    """
    wru = rru = 0.0
    tw = items.get("transact_write")
    if tw:
        kb = max(1, math.ceil(tw["largest_item_json_bytes"] / 1024))
        kinds = tw["items"]
        wru += 2 * kb * (kinds.get("Put", 0) + kinds.get("Update", 0) + kinds.get("Delete", 0))
        wru += kb * len(indexed(tw.get("put_attributes", [])))
        rru += 2 * kinds.get("ConditionCheck", 0)
    bg = items.get("batch_get")
    if bg:
        rru += bg["keys"] * (1.0 if bg["consistent"] else 0.5)
    return wru, rru


# Documented quotas the capacity model uses (us-east-1 defaults; per account and Region unless said).
QUOTA = {
    "lambda_concurrency": 1000,  # concurrent executions, adjustable
    "lambda_scaling": 1000,  # more concurrent executions per function every 10 s
    "http_api_rps": 10000,  # HTTP API account throttle, steady (burst 5,000), adjustable
    "ddb_partition_wru": 1000,  # write units a second one partition (and one item, one index key) takes
    "ddb_partition_rru": 3000,  # read units a second one partition takes
    "ddb_table_wru": 40000,  # on-demand table maximum, default (adjustable)
    "ddb_new_table_wru": 4000,  # an on-demand table's initial write throughput, until it has seen more
}


def load_section(w, rt):
    load = rt.get("load")
    if not load:
        return
    w("## Load: instances at once")
    w("")
    w(f"N function instances at once, each sending its next vend as soon as the last is answered (Lambda runs "
      f"one invocation at a time per environment), {load['levels'][0]['vends']:,} vends a level shared among its "
      f"instances, each level on a fresh emulator, on a {load['cpus']}-core machine that also runs moto. CPU is the bootstrap processes' user + "
      "system time (/proc) over the vends; the log bytes are what the function wrote per vend.")
    w("")
    rows = [(l["instances"], l["vends"], l["failed"], f"{l['vends_per_second']:.1f}", f"{l['latency_ms']['p50']:.1f}",
             f"{l['latency_ms']['p99']:.1f}", f"{l['latency_ms']['max']:.1f}", f"{l['cpu_ms_per_vend']:.2f}",
             f"{l['log_bytes_per_vend']:g}") for l in load["levels"]]
    w(table(["Instances", "Vends", "Failed", "Vends/s", "p50 (ms)", "p99 (ms)", "max (ms)", "CPU per vend (ms)",
             "Log bytes per vend"], rows))
    w("")
    w("Throughput here is moto's: one Python process applies every transaction, deep-copying the table, and "
      "shares the two cores with the instances, so more instances queue at the emulator and the tail grows. "
      "What carries over to AWS is the CPU per vend, which sets how many vends one environment can serve a "
      "second (about 1,000 / CPU ms at a full vCPU; Lambda gives 128 MB about a fourteenth of one, 1,769 MB being one, so a busy "
      "environment there is CPU-bound near 1,000 / (14 × CPU ms) vends a second and scales out beyond).")
    w("")
    capacity_section(w, rt, load)


def capacity_section(w, rt, load):
    w("## Capacity: what binds first")
    w("")
    warm = {p["path"]: p for p in rt["round_trips"]["paths"]}["warm allow"]
    wru, rru = ddb_units(warm.get("dynamodb") or {})
    cpu = load["levels"][0]["cpu_ms_per_vend"]
    w("One vend is one API Gateway request, one Lambda invocation of about one AWS round trip (10–20 ms in a "
      f"Region), one `AssumeRole`, one transaction of {wru:g} WRU and {rru:g} RRU, and {cpu:.2f} ms of CPU. "
      "A vend a second is a credential consumer refreshing every session length: a client refreshes its "
      "credentials before they expire (`tvm` does 5 minutes before: every 600 s on 900 s sessions), so 1,000 "
      "vends/s is about 600,000 consumers on 900 s sessions, or 3.3 million on one-hour ones.")
    w("")
    # An environment's time per vend at 128 MB: the round trip or its CPU at
    # a fourteenth of a vCPU, whichever is longer.
    busy_s = max(0.02, cpu * 14 / 1000)
    w(f"At 128 MB an environment has about a fourteenth of a vCPU, so the {cpu:.2f} ms of CPU take about "
      f"{cpu * 14:.0f} ms there: a vend holds its environment about {busy_s * 1000:.0f} ms, longer than its round "
      "trip. At 512 MB (a quarter of a vCPU) it is the round trip again, and duration costs about the same: "
      "four times the memory for about a quarter of the time. (The cost table bills the latency measured here; "
      f"billed at {busy_s * 1000:.0f} ms, its Lambda line is "
      f"${(lambda_cost(busy_s * 1000) - lambda_cost(20)) * 1e6:.2f} per million higher.)")
    w("")
    rows = []
    for rate in (100, 1000, 10000):
        concurrency = rate * busy_s
        rows.append((
            f"{rate:,}",
            f"{concurrency:,.0f} environments busy at 128 MB: "
            + ("over" if concurrency > QUOTA["lambda_concurrency"] else "under")
            + f" the default {QUOTA['lambda_concurrency']:,}",
            f"{rate * wru:,.0f} WRU/s, {rate * rru:,.0f} RRU/s"
            + (" — over a new on-demand table's 4,000 WRU/s until it has seen the load: pre-warm it"
               if rate * wru > QUOTA["ddb_new_table_wru"] else "")
            + (f" — over the table default of {QUOTA['ddb_table_wru']:,}: raise it" if rate * wru > QUOTA["ddb_table_wru"] else ""),
            "binds: 10,000 rps" if rate >= QUOTA["http_api_rps"] else f"{rate * 100 // QUOTA['http_api_rps']}% of 10,000 rps",
            "STS request rate (below)" if rate >= 1000 else "well under",
        ))
    w(table(["Vends/s", "Lambda", "DynamoDB, table", "HTTP API", "STS"], rows))
    w("")
    w("In the order they bind as one deployment grows:")
    w("")
    w(f"1. **One hot caller's rate counter.** Every vend of a caller for a profile updates one counter item "
      f"(`#rate#caller#profile#window`) at 2 WRU in the transaction; an item takes at most "
      f"{QUOTA['ddb_partition_wru']:,} WRU/s, so one caller and profile top out near "
      f"{QUOTA['ddb_partition_wru'] // 2} vends/s, whatever the table's capacity. tvm's answer is the rate limit "
      "itself (default 60 a minute per caller and profile): a caller near that rate is a misbehaving client, "
      "and it is refused at the counter with 429 long before the item throttles (a throttled transaction "
      "fails closed, 503). Many tasks of one ECS service share a caller (their role): at their refresh rate "
      "that is tasks / 600 vends/s, so a 100,000-task service is about 170 vends/s.")
    w(f"2. **One profile's index key.** `by-profile` is keyed by profile, and each vend writes its entry "
      f"(1 WRU): one index partition key takes {QUOTA['ddb_partition_wru']:,} WRU/s, so one profile tops out near "
      f"{QUOTA['ddb_partition_wru']:,} vends/s, and a throttled index write throttles the transaction (503, no "
      "credentials). `by-caller` has the same bound per caller. Spread a busier workload over several profiles "
      "(one per service), or shard the index key, which this release does not (a schema migration).")
    w("3. **STS.** `AssumeRole` counts against the STS request rate of the account tvm's function runs in "
      "(the caller of `AssumeRole`), per Region. We found no number for it in AWS's published quota tables, and "
      "AWS says its IAM and STS rate quotas cannot be increased (re:Post knowledge center, \"How do I resolve "
      "API throttling or 'Rate exceeded' errors for IAM and AWS STS?\"): plan on several hundred requests a "
      "second per account and Region until AWS Support confirms yours. Beyond it: deploy tvm in more Regions (each its own STS quota, clients on a latency record) or "
      "in more accounts, and lengthen sessions (a one-hour duration is a quarter of the vends of 900 s). A "
      "throttled `AssumeRole` fails closed (503, the session recorded `failed`), and the SDK retries once.")
    w(f"4. **The table.** At 1,000 vends/s the sessions table takes {1000 * wru:,.0f} WRU/s: over what a new "
      f"on-demand table serves at first ({QUOTA['ddb_new_table_wru']:,} WRU/s; it doubles its previous peak "
      "within 30 minutes), so set warm throughput on a table that is to take that load at once. At 10,000 vends/s "
      f"it is {10000 * wru:,.0f} WRU/s, over the default on-demand table maximum "
      f"({QUOTA['ddb_table_wru']:,}): raise it, or provision capacity.")
    w(f"5. **API Gateway and Lambda.** The HTTP API's account throttle ({QUOTA['http_api_rps']:,} requests/s, "
      f"adjustable) binds at 10,000 vends/s: raise it first. Lambda: at 128 MB, 10,000 vends/s keeps about "
      f"{10000 * busy_s:,.0f} environments busy, of the default {QUOTA['lambda_concurrency']:,} concurrency "
      "(512 MB brings it to about 200); a cold burst grows "
      f"by {QUOTA['lambda_scaling']:,} environments every 10 s. Reserved concurrency on the function keeps "
      "other functions from starving tvm (and tvm from starving them).")
    w("")

def main():
    args = sys.argv[1:]
    results = args[0] if args else os.path.join(ROOT, "bench", "results", "runtime.json")
    out_path = args[1] if len(args) > 1 else os.path.join(ROOT, "docs", "performance.md")
    rt = load(results)
    trips = rt["round_trips"]
    d = trips["delay_ms"]
    paths = {p["path"]: p for p in trips["paths"]}
    warm = paths["warm allow"]
    cold = rt["cold_start"]
    cache = rt["policy_cache"]
    mem = rt["memory"]

    doc = []
    w = doc.append
    w("# Performance")
    w("")
    w("<!-- Generated by `make bench` (bench/report.py) from measured numbers. Do not edit by hand. -->")
    w("")
    stamp = datetime.fromtimestamp(rt["generated"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    w(f"Measured {stamp} on a {rt['machine']['cpus']}-core Linux machine: the release `bootstrap` "
      "driven through the Lambda runtime API emulator, every AWS call going to moto through the "
      "project's proxy (loopback only). Rerun with `make bench`; it rewrites this page.")
    w("")
    if rt.get("quick"):
        w("**A `--quick` run: few samples, 1,000 vends for memory. Not for comparison.**")
        w("")
    w("## Targets")
    w("")
    x86 = size("target/release/bootstrap")
    arm = size("target/aarch64-unknown-linux-gnu/release/bootstrap")
    zipped = size("target/lambda/bootstrap/bootstrap.zip")
    decide_1000 = criterion("decide/1000")
    handler = criterion("handler_vend")
    first_poll = cold["first_poll_ms"]
    floor = cold.get("harness_floor_ms", 0.0)
    first_bound = cold["first_vend_bound_ms"]
    first_invocation = cold["first_vend_ms"] - first_poll
    peak_mb = mem["peak_rss_kb"] / 1024
    rss = mem["rss_kb"]
    marks = sorted(rss, key=int)
    growth = rss[marks[-1]] - rss[marks[0]]
    targets = [
        ("Sequential AWS calls, warm allow", "≤ 1.1 (one round trip)", f"{warm['sequential_calls']:.2f}",
         verdict(warm["sequential_calls"] <= 1.1)),
        ("Cold start: exec to first runtime-API poll", f"≤ {REFERENCE_FIRST_POLL_MS} ms (the reference, measured here)",
         f"{first_poll:.1f} ms ({first_poll - floor:.1f} ms over the harness's {floor:.1f} ms)",
         verdict(first_poll <= REFERENCE_FIRST_POLL_MS)),
        ("Cold start: first vend, first poll to answer", "< 2 × warm + policy load",
         f"{first_invocation:.1f} ms (bound {first_bound:.1f} ms)", verdict(first_invocation < first_bound)),
        ("Cold start: first vend, exec to answer (init included)", "< 2 × warm + policy load",
         f"{cold['first_vend_ms']:.1f} ms (bound {first_bound:.1f} ms)", verdict(cold["first_vend_ms"] < first_bound)),
        (f"Peak RSS after {mem['vends']:,} warm vends", "< 32 MB", f"{peak_mb:.1f} MB", verdict(peak_mb < 32)),
        (f"RSS growth, vend {int(marks[0]):,} to {int(marks[-1]):,}", "none (no leak)", f"{growth} kB",
         verdict(growth <= 512)),
        ("Release binary, x86_64", "≤ 10 MB", mb(x86), verdict(x86 is not None and x86 <= 10e6)),
        ("Release binary, arm64 (cargo-lambda)", "≤ 10 MB", mb(arm), verdict(arm is not None and arm <= 10e6)),
        ("Deploy zip, arm64", "≤ 4 MB", mb(zipped), verdict(zipped is not None and zipped <= 4e6)),
        ("`decide`, 1,000 rules", "< 20 µs", us(decide_1000), verdict(decide_1000 is not None and decide_1000 < 20e3)),
        ("Handler overhead, one vend over in-memory fakes", "< 100 µs", us(handler),
         verdict(handler is not None and handler < 100e3)),
    ]
    w(table(["What", "Target", "Measured", ""], targets))
    w("")
    w("RSS growth counts as none up to 512 kB (allocator arenas settle; a leak grows with every vend).")
    w("")

    w("## Round trips per path")
    w("")
    w(f"The proxy delays every AWS call by D. Each path ran {trips['samples']} times at D = 0 and at "
      f"D = {d} ms (after one unmeasured request each); the table shows medians. Sequential calls = "
      f"(latency(D) − latency(0)) / D: calls made one after another each add D, calls made concurrently "
      "add it once. The calls column is what the proxy saw per request at D = 0.")
    w("")
    rows = []
    for p in trips["paths"]:
        calls = ", ".join(f"{k} × {v:g}" for k, v in p["calls_per_request"].items()) or "none"
        before = BEFORE.get(p["path"])
        rows.append((p["path"], p["status"], f"{p['latency_ms']['0']:.1f}", f"{p['latency_ms'][str(d)]:.1f}",
                     "" if before is None else f"{before:.2f}", f"**{p['sequential_calls']:.2f}**", calls))
    w(table(["Path", "Answer", "Latency, D = 0 (ms)", f"Latency, D = {d} ms (ms)", "Sequential calls before",
             "Sequential calls now", "AWS calls per request"], rows))
    w("")
    w("*Before*: the same bench before the gate transaction and `AssumeRole` overlapped (2026-12-02).")
    w("")
    w("- *Warm allow*: API Gateway identity, allowed by a rule: DynamoDB `TransactWriteItems` (session record, "
      "revocation checks, rate counter in one transaction) and STS `AssumeRole`, sent together. The floor is one "
      "round trip; what is left above 1 is the function's own time and the later of the two answers.")
    w("- *Presigned identity*: the `GetCallerIdentity` replay first (who is calling decides what may be minted "
      "and for whom), then the pair: two round trips, the floor for an identity tvm must ask STS about.")
    w("- *Approved request* and *break-glass*: the first vend of a caller reads the gate state (`BatchGetItem`) "
      "before the pair; the container then remembers the open approval or event until it ends, and the "
      "transaction checks, in the same step as the record, that it is still open. The rows measure repeated "
      "vends, so one round trip; a caller's first vend from a gate is two.")
    w("- *Denied* never leaves the function. *Rate-limited*: the first refusal in a window overlaps (its mint is "
      "discarded, below); from then on that container sends only the transaction until the window ends.")
    w("- *First request after cold start* is measured from the exec of `bootstrap` and includes the policy load "
      "(`GetParametersByPath`), which starts during init, then the pair.")
    w(REVOCATION_V2)
    w("")
    w("### What the overlap costs, and what it keeps")
    w("")
    w("Nothing `AssumeRole` needs depends on the transaction's answer, so both go out at once. Kept:")
    w("")
    w("- credentials are returned only after the transaction committed: every credential a caller holds has its "
      "record, its rate count and its revocation check, as before;")
    w("- when the transaction refuses (revoked, rate limited, gate closed) or fails (unavailable, slow, "
      "throttled: a timeout of either call takes the same path as before), the minted credentials are dropped "
      "unsent and accounted for: the session is recorded `discarded`, or, if that write fails too or the Lambda "
      "deadline cuts the request off between the two answers, named with its `source_identity` in an error line: "
      "every tvm SourceIdentity in CloudTrail leads back to a record or a log line;")
    w("- a revoked caller's mint within 300 s of its revocation is dead on arrival besides (the caller's deny "
      "covers every session of it issued before `now + 300 s`); later ones, and those beside a session, pair, "
      "rate or gate refusal, are valid at STS but never leave the function;")
    w("- a refused caller goes sequential in that container (gates first, `AssumeRole` only once they passed): "
      "rate limited, until its window ends; revoked, for 15 minutes; its gate closed, for 60 s. When the gates "
      "fail, every caller does, for 60 s. A flood of over-limit or revoked requests costs one discarded mint per caller, "
      "container and window, not one per request (`overlap::*`, `faults::*` on the real bootstrap).")
    w("")
    w("Given up: STS issues (and CloudTrail records) credentials for some refused requests, at most the above; "
      "they count against the account's STS request rate, and each refused-and-discarded vend writes one more "
      "item (1 WRU plus its index writes). A remembered gate only ever grants: one closed in another container "
      "costs one discarded mint, and any refusal decided on a remembered state is decided again on what the "
      "store holds.")
    w("")

    w("## Policy cache")
    w("")
    w(f"TTL {cache['ttl_seconds']} s: a request that finds the set older than the TTL serves it and starts one "
      f"background refresh, so SSM sees at most {cache['expected_per_minute']} calls a minute per container, "
      "whatever the request rate.")
    w("")
    rows = [(f"{l['target_rps']}", f"{l['rps']}", f"{l['seconds']}", l["ssm_calls"], f"{l['ssm_calls_per_minute']}",
             f"{l['latency_ms']['p50']:.1f}") for l in cache["loads"]]
    w(table(["Target req/s", "Achieved req/s", "Seconds", "SSM calls", "SSM calls / minute", "Vend p50 (ms)"], rows))
    w("")
    fl = cache["refresh_in_flight"]
    w(f"A refresh in flight: every SSM call delayed {fl['ssm_delay_ms']} ms, {fl['refreshes']} refreshes during "
      "steady load; requests split by whether they overlapped a refresh.")
    w("")
    rows = [(k, v["n"], f"{v['p50']:.1f}", f"{v['p90']:.1f}", f"{v['max']:.1f}")
            for k, v in (("overlapping a refresh", fl["during"]), ("not overlapping", fl["outside"]))]
    w(table(["Requests", "n", "p50 (ms)", "p90 (ms)", "max (ms)"], rows))
    w("")
    w("The medians are the comparison: no request waits for the refresh, whose own latency is "
      f"{fl['ssm_delay_ms']} ms. The tails on both rows are the emulator's: moto deep-copies the sessions table "
      "for every transaction and pauses for garbage collection as its heap grows, and whichever DynamoDB call is "
      "running then waits (seen on single calls in the proxy's record, with or without a refresh).")
    w("")

    w("## Cold start")
    w("")
    w(table(["Runs", "Exec → first poll (ms)", "Exec → first vend answered (ms)", "Policy load (ms)",
             "Warm vend (ms)", "Bound: 2 × warm + load (ms)"],
            [(cold["runs"], f"{cold['first_poll_ms']:.1f}", f"{cold['first_vend_ms']:.1f}",
              f"{cold['policy_load_ms']:.1f}", f"{cold['warm_vend_ms']:.1f}", f"{cold['first_vend_bound_ms']:.1f}")]))
    w("")
    w("Medians. Init builds the SDK clients and starts the policy load without waiting for it; the first "
      "request waits only for what is still missing.")
    w("")
    w(f"The harness's own exec to first poll, a bash script that polls at once spawned the same way: "
      f"{floor:.1f} ms; the function's init is the rest, {first_poll - floor:.1f} ms. The instances are spawned "
      "as Lambda execs them (no parent-death signal, which would fork the whole bench process first: that "
      "added 1.6 ms: 9.1 ms with it in this bench's first run of the same code).")
    w("")
    w(f"Exec to first poll was {BEFORE_FIRST_POLL_MS} ms before this change (with that fork). Init read the system's root "
      "certificates: a bundle and a directory of about 150 files on Debian (`/etc/ssl/certs`), scanned by each "
      "TLS stack, and the AWS SDK parsed all 150 again for each of its five clients. The roots are now compiled "
      "in: the AWS clients trust Amazon Trust Services' five roots (every AWS endpoint chains to them; parsed "
      "from PEM per client, five certificates), the identity sources Mozilla's roots (`webpki-roots`, trust "
      "anchors that need no parsing); the function reads no file for them. A deployment with a private CA "
      "names one PEM file in `TVM_CA_BUNDLE` (docs/deploy.md), trusted besides the compiled-in roots.")
    w("")
    w("What is left was taken down step by step, each build against the others with "
      "`cargo run --release -p tvm-bench --bin spawn-ab -- 400 A/bootstrap B/bootstrap ...` "
      "(each round spawns every build once, so the machine's noise falls on all alike; "
      "the medians below are of one such run):")
    w("")
    w(table(["Build", "Exec → first poll (ms)"],
            [(name, f"{ms:.2f}") for name, ms in INIT_STEPS]
            + [("a Rust binary that only connects and polls (the floor)", f"{INIT_STEPS_FLOOR_MS:.2f}")]))
    w("")
    w("- *Timezones.* chrono-tz compiles the IANA database into static tables, one pointer per transition: "
      "30,000 of the binary's 74,800 relocations and 1 MB of `.data.rel.ro`, which the loader wrote (and so "
      "copied page by page) at every start. jiff carries the same database as TZif bytes and parses a zone "
      "when a policy names it. The x86_64 binary went from 13.0 to 11.5 MB, its relocations to 46,500. "
      "Policies name zones exactly as before (the database's spelling); the database is 2026f (chrono-tz "
      "had 2025b, without this year's changes for Canada, Cuba and Morocco).")
    w("- *Roots.* Picking Amazon's five out of Mozilla's 150 read every certificate (200 kB of pages "
      "faulted in); they are now a PEM file compiled in, `crates/tvm-lambda/certs/`, which a test checks "
      "against the `webpki-root-certs` crate so that an update cannot leave it behind.")
    w("- *Region and credentials.* Lambda sets `AWS_REGION` and the function's keys in the environment, the "
      "first link of the SDK's default chains. Naming them skips building the rest of the chains, among them "
      "web identity's own STS client and an IMDS client. Without them set, the default chains as before.")
    w("")
    w("Left as they are: each SDK crate parses its endpoint partition table (JSON and regular expressions) "
      "when its first client is built, a tenth of init each for SSM, DynamoDB and STS; only a hand-written "
      "endpoint resolver avoids it, and it would have to follow FIPS, dual-stack and custom endpoints itself. "
      "A current-thread runtime was slower (5.50 ms against 4.80 in one run): the policy load's start, which "
      "runs beside init on the second worker, then delays the first poll.")
    w("")

    w("## Memory")
    w("")
    w(table(["Vends", "vends/s (moto-bound)"] + [f"RSS after {int(m):,} (kB)" for m in marks] + ["Peak RSS (kB)"],
            [(f"{mem['vends']:,}", mem["vends_per_second"]) + tuple(rss[m] for m in marks) + (mem["peak_rss_kb"],)]))
    w("")
    w(f"Vends failed closed (503) by an emulator stall longer than the attempt timeout: "
      f"{mem.get('emulator_stalls', 0)}. They still ran the function's code and count in the vends.")
    w("")

    load_section(w, rt)

    w("## Size")
    w("")
    w(table(["Artifact", "Size"], [
        ("`target/release/bootstrap` (x86_64, stripped)", mb(x86)),
        ("`bootstrap` arm64 (cargo-lambda, stripped)", mb(arm)),
        ("`bootstrap.zip` arm64 (what is deployed)", mb(zipped)),
    ]))
    w("")
    w("Release profile: `opt-level = \"z\"`, thin LTO, one codegen unit, stripped; rustls on ring through one "
      "shared HTTPS client (no aws-lc), no regex in the log filter. Two things that would each take about "
      "1.5 MB more are kept on purpose: unwind tables (`panic = \"abort\"` would turn a caught panic, which "
      "today answers 400 or 500, into a crashed environment and a cold start per hostile request) and "
      "position-independent code (a static relocation model would drop ASLR for the binary).")
    w("")

    w("## CPU (criterion)")
    w("")
    rows = []
    for name, what in [("decide/10", "`decide`, 10 rules"), ("decide/100", "`decide`, 100 rules"),
                       ("decide/1000", "`decide`, 1,000 rules"), ("render", "render session policy and tags"),
                       ("caller_vars", "caller variables"),
                       ("principal_parse/assumed_role", "parse an assumed-role ARN"),
                       ("principal_parse/user", "parse a user ARN"),
                       ("principal_parse/sso", "parse an SSO (GovCloud) ARN"),
                       ("handler_vend", "whole vend through the handler, in-memory adapters"),
                       ("sts_client_build", "build an STS client (what a per-request rebuild pays before I/O)")]:
        rows.append((what, us(criterion(name))))
    w(table(["Benchmark", "Median"], rows))
    w("")
    w("`decide` evaluates every rule (deny overrides), the matching one last. Sources: "
      "`crates/tvm-core/benches/core.rs`, `crates/tvm-lambda/benches/handler.rs`.")
    w("")
    w(TRUST_MODEL_V2)
    w("")

    w("## Cost per million vends")
    w("")
    items = warm.get("dynamodb") or {}
    wru, rru = ddb_units(items)
    tw = items.get("transact_write", {})
    kinds = ", ".join(f"{v} {k}" for k, v in tw.get("items", {}).items())
    lat = {0: warm["latency_ms"]["0"], d: warm["latency_ms"][str(d)]}
    seq = warm["sequential_calls"]
    rebuild_ms = (criterion("sts_client_build") or 0) / 1e6
    cold_first = paths["first request after cold start"]["latency_ms"]
    w(f"arm64, 128 MB, us-east-1 list prices: Lambda ${PRICE['lambda_arm_gb_s']:.10f} per GB-s and "
      f"${PRICE['lambda_request'] * 1e6:.2f} per million requests; HTTP API ${PRICE['http_api_request'] * 1e6:.2f} "
      f"per million; DynamoDB on-demand ${PRICE['ddb_wru'] * 1e6:.3f} per million WRU and "
      f"${PRICE['ddb_rru'] * 1e6:.3f} per million RRU; SNS ${PRICE['sns_publish'] * 1e6:.2f} per million publishes.")
    w("")
    idx = indexed(tw.get("put_attributes", []))
    sparse = [n for n in session_indexes() if n not in idx]
    w(f"DynamoDB per warm vend, from the transaction the proxy recorded ({kinds}; largest item "
      f"{tw.get('largest_item_json_bytes', 0)} bytes of JSON, so under 1 KB): **{wru:g} WRU and {rru:g} RRU**: "
      "2 WRU per transactional write, 1 WRU per index the session item lands in "
      f"({', '.join(idx)}; {', '.join(sparse) or 'none'} sparse: only revoked sessions carry its "
      "key), 2 RRU per condition check. An earlier version of this page left the index writes out.")
    w("")
    w("Billed duration is the measured latency rounded up to the millisecond, at D = 0 (the local emulator, "
      f"about {lat[0] / max(seq, 1):.1f} ms a call) and D = {d} ms (a slow region). tvm runs on a custom "
      "runtime (`provided.al2023`), whose init phase Lambda has always billed (since August 2025 it bills "
      "managed runtimes' init too): a cold vend is billed from exec to answer.")
    w("")
    w(f"The reference design makes {REFERENCE_CALLS} sequential calls and rebuilds its STS client per request; "
      f"its DynamoDB work per vend is {REFERENCE_WRITES} plain writes and {REFERENCE_READS} strongly consistent "
      f"read, and its session table has {REFERENCE_INDEXES} indexes projecting ALL, each written with the "
      f"session: {REFERENCE_WRITES + REFERENCE_INDEXES} WRU and {REFERENCE_READS} RRU. Modelled from our "
      f"measurements: its latency is ours plus {REFERENCE_CALLS - seq:.2f} more calls and {NEW_CONNECTION_RTTS} "
      f"handshake round trips for the new connection (each D), plus the client build ({rebuild_ms * 1000:.0f} µs).")
    w("")

    def per_million(ms, wru_, rru_, cold_share, cold_ms):
        warm_ms = ms
        lam = (1 - cold_share) * lambda_cost(warm_ms) + cold_share * lambda_cost(cold_ms)
        return {
            "lambda": lam * 1e6,
            "apigw": PRICE["http_api_request"] * 1e6,
            "ddb": (wru_ * PRICE["ddb_wru"] + rru_ * PRICE["ddb_rru"]) * 1e6,
        }

    busy_share = 1 / (BUSY_RPS * ENVIRONMENT_LIFETIME_S)
    rows = []
    lines = {}
    load_levels = rt.get("load", {}).get("levels", [])
    own_log = load_levels[0]["log_bytes_per_vend"] if load_levels else 0
    platform_log = sum(len(l) + 1 for l in PLATFORM_LINES)
    log_events = (1 if own_log else 0) + len(PLATFORM_LINES)
    log_bytes = own_log + platform_log + LOG_EVENT_OVERHEAD * log_events
    logs_per_million = log_bytes * 1e6 / 1e9 * PRICE["logs_ingest_gb"]
    item_bytes = tw.get("largest_item_json_bytes", 0) + ITEM_OVERHEAD
    stored = item_bytes * (1 + len(idx))
    storage_per_million = stored * 1e6 / 1e9 * PRICE["ddb_storage_gb_month"] * SESSION_RETENTION_DAYS / 30
    ref_stored = item_bytes * (1 + REFERENCE_INDEXES)
    ref_storage = ref_stored * 1e6 / 1e9 * PRICE["ddb_storage_gb_month"] * SESSION_RETENTION_DAYS / 30
    for dd in (0, d):
        extra = (REFERENCE_CALLS - seq + NEW_CONNECTION_RTTS) * dd + rebuild_ms
        ours_cold = cold_first[str(dd)]
        for label, share in (("busy", busy_share), ("sparse", 1.0)):
            ours = per_million(lat[dd], wru, rru, share, ours_cold)
            ours["storage"] = storage_per_million
            ours["logs"] = logs_per_million
            ref = per_million(lat[dd] + extra, REFERENCE_WRITES + REFERENCE_INDEXES, REFERENCE_READS, share,
                              ours_cold + extra)
            ref["storage"] = ref_storage
            ref["logs"] = logs_per_million
            for who, c in (("tvm", ours), ("reference", ref)):
                total = sum(c.values())
                lines[(dd, label, who)] = (c, total)
                rows.append((f"D = {dd} ms", label, who, f"${c['lambda']:.2f}", f"${c['apigw']:.2f}",
                             f"${c['ddb']:.2f}", f"${c['storage']:.2f}", f"${c['logs']:.2f}", f"**${total:.2f}**"))
    w(table(["Per-call latency", "Traffic", "Design", "Lambda", "API Gateway", "DynamoDB requests",
             "DynamoDB storage", "CloudWatch Logs", "Total"], rows))
    w("")
    w(f"*DynamoDB storage*: a session item ({item_bytes} bytes with DynamoDB's {ITEM_OVERHEAD}-byte overhead) and "
      f"its copy in each index it lands in ({stored} bytes a vend), kept {SESSION_RETENTION_DAYS} days after "
      "expiry: a million vends a month hold that many items, billed per GB-month "
      f"(${PRICE['ddb_storage_gb_month']:.2f}). The reference is costed with the same item in its "
      f"{REFERENCE_INDEXES} indexes. *CloudWatch Logs*: {own_log:g} bytes the function logs per vend (the "
      f"decision line, measured in the load run), {platform_log} bytes of Lambda's `platform.start` and "
      f"`platform.report` lines in the JSON log format, and {LOG_EVENT_OVERHEAD} bytes per event that CloudWatch "
      f"bills on top: {log_bytes:g} bytes, at ${PRICE['logs_ingest_gb']:.2f} per GB ingested (storage after "
      "ingestion is compressed and depends on the log group's retention, not counted). The same for the "
      "reference, whose lines we do not know.")
    w("")
    w(f"*Busy*: {BUSY_RPS:g} vend/s reaching an environment that lives about {ENVIRONMENT_LIFETIME_S // 3600} h "
      f"(AWS does not publish lifetimes; this is an assumption), so 1 vend in {int(1 / busy_share):,} is cold. "
      f"*Sparse*: a vend every {SPARSE_GAP_S // 60} min, after the environment was reclaimed, so every vend is cold.")
    w("")
    w("SNS: the vend path publishes only for break-glass vends (one notification each, "
      f"${PRICE['sns_publish'] * 1e6:.2f} per million); approvals and break-glass events publish once per "
      "state change. Neither is on the warm-allow path, so neither is in the table.")
    w("")
    ours, ours_total = lines[(d, "busy", "tvm")]
    ref, ref_total = lines[(d, "busy", "reference")]
    names = {"lambda": "Lambda", "apigw": "API Gateway", "ddb": "DynamoDB requests", "storage": "DynamoDB storage",
             "logs": "CloudWatch Logs"}
    biggest = max(ours, key=ours.get)
    ddb_gap = ours["ddb"] - ref["ddb"]
    w(f"What the table shows, at D = {d} ms and busy traffic: tvm's largest line is {names[biggest]} "
      f"(${ours[biggest]:.2f} of ${ours_total:.2f}). Its Lambda line is ${ref['lambda'] - ours['lambda']:.2f} "
      f"below the reference design's, its DynamoDB request line ${abs(ddb_gap):.2f} "
      f"{'above' if ddb_gap > 0 else 'below'} it: one "
      "transaction bills each write twice and each condition check as a transactional read, where the "
      "reference's plain calls do not, and the reference writes four index copies to tvm's two. What the "
      "transaction buys is atomicity (no session without its rate count, no vend that races a revocation) and "
      "the round trips in the first table; the duration saving grows with per-call latency, at "
      f"${lambda_cost(2) * 1e6 - lambda_cost(1) * 1e6:.4f} per million vends for each millisecond at 128 MB.")
    w("")
    w("### Lowering tvm's DynamoDB bill")
    w("")
    w(f"Per warm vend: {wru:g} WRU (${wru * PRICE['ddb_wru'] * 1e6:.3f} per million) and {rru:g} RRU "
      f"(${rru * PRICE['ddb_rru'] * 1e6:.3f}); storage ${storage_per_million:.2f} per million. What each lever "
      "would save, from these numbers, and what was done:")
    w("")
    gsi_storage = item_bytes * len(idx) * 1e6 / 1e9 * PRICE["ddb_storage_gb_month"] * SESSION_RETENTION_DAYS / 30
    keys_only = (64 + ITEM_OVERHEAD) * len(idx) * 1e6 / 1e9 * PRICE["ddb_storage_gb_month"] * SESSION_RETENTION_DAYS / 30
    w(table(["Lever", "Saves per million vends", "Done?"], [
        ("The revocation index sparse (only revoked sessions carry `revoked_on`)",
         f"${1 * PRICE['ddb_wru'] * 1e6:.3f} of WRU and ${item_bytes * 1e6 / 1e9 * PRICE['ddb_storage_gb_month']:.2f} "
         "of storage against an index on every session", "yes (was already)"),
        ("Index projections: `by-caller` and `by-profile` KEYS_ONLY instead of ALL",
         f"${gsi_storage - keys_only:.2f} of storage; **no WRU**: an index write of an item under 1 KB is 1 WRU "
         "whatever it projects", "no: listings and caller revocation would need a BatchGetItem after each "
         "query, and DynamoDB cannot change a deployed index's projection: CloudFormation and Terraform delete "
         "and re-create it, and while `by-caller` backfills, revoking a caller finds none of its live sessions"),
        ("Item size", f"none while the item stays under 1 KB ({tw.get('largest_item_json_bytes', 0)} bytes now)",
         "kept under 1 KB: the longest fields (caller ARN, lineage) are bounded by IAM's own limits"),
        ("The caller+profile revocation marker merged into the caller's (one condition check, not two)",
         f"${2 * PRICE['ddb_rru'] * 1e6:.3f} of RRU", "no: the markers are also the chain gates a vended session "
         "checks, and their writer and the revocation state change with them; a migration of its own"),
        ("The session put outside the transaction (a plain conditional put beside it)",
         f"${1 * PRICE['ddb_wru'] * 1e6:.3f} of WRU", "no: it gives up the record and its rate count being one "
         "write, and a retried plain put needs its own idempotency"),
    ]))
    w("")
    w("The levers left are each worth under $0.65 per million vends against a request line of "
      f"${wru * PRICE['ddb_wru'] * 1e6 + rru * PRICE['ddb_rru'] * 1e6:.2f}, and each costs a guarantee or a "
      "migration; the corrected model is the change here. The cheaper lever outside DynamoDB is the log: "
      f"${logs_per_million:.2f} per million, of which Lambda's platform lines are "
      f"{platform_log * 100 / max(log_bytes, 1):.0f}% (set the system log level to WARN to drop them).")
    w("")
    with open(out_path, "w") as f:
        f.write("\n".join(doc))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

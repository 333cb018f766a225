#!/usr/bin/env bash
# Load run of `odqa serve` with oha: for each route and client count, a run
# of --duration against one server process; QPS, p50/p99 (all answers and
# 200s only), status codes, connection errors, and the server's RSS before
# and after. Writes OUT.json and OUT.md (default bench/results/serve-load).
#
#   bench/serve-load.sh --reader DIR --reader-label "tiny random BERT" \
#       [--index index/kowiki-2020-mini] [--routes "search ask"] \
#       [--clients "50 200"] [--duration 60s] [--ask-top-k 5] \
#       [--search-top-k 10] [--out bench/results/serve-load] [--append] \
#       [-- SERVE FLAGS…]
#
# --append adds this session (one server, its runs) to OUT.json instead of
# starting it afresh; OUT.md always shows every session in OUT.json
# (--render-only rewrites OUT.md from OUT.json and runs nothing).
#
# Needs target/release/odqa (or $ODQA) and oha (or $OHA):
#   cargo build --release -p odqa
#   cargo install oha --no-default-features --features native-tls
# A random reader for the plumbing (its answers are meaningless):
#   cargo run --release -p odqa-serve --example tiny_reader -- /tmp/tiny-reader TOKENIZER_JSON
set -euo pipefail
cd "$(dirname "$0")/.."

ODQA=${ODQA:-target/release/odqa}
OHA=${OHA:-oha}
INDEX=index/kowiki-2020-mini
READER=""
READER_LABEL=""
ROUTES="search ask"
CLIENTS="50 200"
DURATION=60s
ASK_TOP_K=5
SEARCH_TOP_K=10
OUT=bench/results/serve-load
PORT=${PORT:-18080}
QUESTIONS=../shared/data/klue-mrc-odqa-val.json
APPEND=0
RENDER_ONLY=0
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --reader) READER=$2; shift 2 ;;
        --reader-label) READER_LABEL=$2; shift 2 ;;
        --index) INDEX=$2; shift 2 ;;
        --routes) ROUTES=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --ask-top-k) ASK_TOP_K=$2; shift 2 ;;
        --search-top-k) SEARCH_TOP_K=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --questions) QUESTIONS=$2; shift 2 ;;
        --append) APPEND=1; shift ;;
        --render-only) RENDER_ONLY=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
render() {
python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
report = json.load(open(out + ".json"))
m = report["machine"]
lines = [
    "# odqa serve under load", "",
    f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; oha and the server share the cores. "
    f"Load: {report['load']['tool']}, bodies cycle through the KLUE-MRC ODQA validation questions (one server per session below, access logs off). "
    "Made by bench/serve-load.sh.",
    "p50/p99/max: oha over every response (503s included); *200s p50/p99*: the server's latency histogram of its 200 answers, interpolated within buckets. "
    "Load avg: the machine's 1-minute load average before the row (other jobs share it).",
    "",
    "| route | reader · server flags | clients | responses/s | 200/s | p50 ms | p99 ms | max ms | 200s p50/p99 ms | status codes | conn. errors | RSS before → after (MB) | load avg |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |",
]
def who(sess):
    return sess["reader"] + (f" · `{sess['serve_flags']}`" if sess["serve_flags"] else "")
for sess in report["sessions"]:
    for r in sess["runs"]:
        k = sess["ask_top_k"] if r["route"] == "/v1/ask" else sess["search_top_k"]
        codes = ", ".join(f"{c}: {v}" for c, v in sorted(r["status_codes"].items()))
        errs = ", ".join(f"{e}: {v}" for e, v in r["connection_errors"].items()) or "0"
        lines.append(f"| {r['route']} (top_k {k}) | {who(sess)} | {r['clients']} | {r['qps']} | {r['ok_qps']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['server_p50_ms_200']} / {r['server_p99_ms_200']} | {codes} | {errs} | {r['rss_before_kb']/1024:.0f} → {r['rss_after_kb']/1024:.0f} | {r['loadavg_1m_before']} |")
lines += ["", "Per session (one server process each):", ""]
for sess in report["sessions"]:
    b = sess["batching"]
    routes = ", ".join(sorted({r["route"] for r in sess["runs"]}))
    batching = (f"{b['forward_passes']:.0f} reader forward passes, {b['mean_windows_per_pass']} windows and "
                f"{b['mean_requests_per_pass']} requests per pass on average" if b["forward_passes"] else "no reader work")
    lines.append(f"- {routes}, {who(sess)} ({sess['index']}, {sess['duration']} per row): {batching}; peak RSS "
                 f"{max(r['rss_peak_kb'] for r in sess['runs'])/1024:.0f} MB (loading included).")
lines.append("")
open(out + ".md", "w").write("\n".join(lines))
print(f"wrote {out}.md", file=sys.stderr)
EOF
}
if [ "$RENDER_ONLY" = 1 ]; then render; exit 0; fi
[ -n "$READER" ] || { echo "--reader DIR is required" >&2; exit 2; }
[ -n "$READER_LABEL" ] || READER_LABEL=$(basename "$READER")
command -v "$OHA" >/dev/null || { echo "oha not found (set OHA=…)" >&2; exit 2; }
[ -x "$ODQA" ] || { echo "$ODQA not found: cargo build --release -p odqa" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Request bodies, one per line (oha cycles through them): real questions.
python3 - "$QUESTIONS" "$WORK" "$ASK_TOP_K" "$SEARCH_TOP_K" <<'EOF'
import json, os, sys
path, work, ask_k, search_k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
questions = []
if os.path.exists(path):
    data = json.load(open(path))
    questions = [q["question"] for q in data if q.get("question")]
if not questions:
    questions = ["이순신이 태어난 해는?", "대한민국의 수도는 어디인가?", "훈민정음을 만든 왕은?"]
with open(os.path.join(work, "search.jsonl"), "w") as f:
    for q in questions:
        f.write(json.dumps({"query": q, "top_k": search_k}, ensure_ascii=False) + "\n")
with open(os.path.join(work, "ask.jsonl"), "w") as f:
    for q in questions:
        f.write(json.dumps({"question": q, "top_k": ask_k}, ensure_ascii=False) + "\n")
print(f"{len(questions)} questions from {path if os.path.exists(path) else 'built-in list'}", file=sys.stderr)
EOF

# Access logs off during the run (RUST_LOG=warn): one line per request
# would be most of the work at these rates.
RUST_LOG=${RUST_LOG:-warn} "$ODQA" serve --index "$INDEX" --reader "$READER" \
    --addr "127.0.0.1:$PORT" "${EXTRA[@]}" 2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "server not ready" >&2; exit 1; }
rss() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$SERVER/status"; }

# One warm-up request per route (first-use costs), not measured.
for route in $ROUTES; do
    curl -sf -H 'content-type: application/json' --data-binary @<(head -1 "$WORK/$route.jsonl") \
        "http://127.0.0.1:$PORT/v1/$route" >/dev/null || true
done

echo "[]" > "$WORK/runs.json"
for route in $ROUTES; do
    for clients in $CLIENTS; do
        before=$(rss VmRSS)
        load=$(cut -d' ' -f1 /proc/loadavg)
        curl -sf "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics-before.txt"
        echo "== /v1/$route, $clients clients, $DURATION" >&2
        "$OHA" -z "$DURATION" -c "$clients" -w --no-tui --output-format json \
            -m POST -H 'content-type: application/json' -Z "$WORK/$route.jsonl" \
            "http://127.0.0.1:$PORT/v1/$route" > "$WORK/oha.json"
        "$OHA" -z 1s -c 1 --no-tui --output-format quiet "http://127.0.0.1:$PORT/healthz" || true
        after=$(rss VmRSS)
        hwm=$(rss VmHWM)
        curl -sf "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics-after.txt"
        python3 - "$WORK/runs.json" "$WORK/oha.json" "$route" "$clients" "$before" "$after" "$hwm" \
            "$WORK/metrics-before.txt" "$WORK/metrics-after.txt" "$load" <<'EOF'
import json, re, sys
runs_path, oha_path, route, clients, before, after, hwm, m_before, m_after, load = sys.argv[1:]

def buckets(path):
    """Cumulative counts of the server's latency histogram of this route's 200s."""
    out = {}
    pat = re.compile(r'^odqa_http_request_duration_seconds_bucket\{route="/v1/' + route +
                     r'",status="200",le="([^"]+)"\} ([0-9.e+]+)$')
    for line in open(path):
        m = pat.match(line.strip())
        if m:
            out[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
    return out

def quantile(q, b0, b1):
    """Linear interpolation inside the bucket holding quantile q (seconds)."""
    les = sorted(b1)
    counts = [b1[le] - b0.get(le, 0.0) for le in les]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank, lo, prev = q * total, 0.0, 0.0
    for le, c in zip(les, counts):
        if c >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * ((rank - prev) / (c - prev) if c > prev else 1.0)
        lo, prev = le, c
    return lo

runs = json.load(open(runs_path))
o = json.load(open(oha_path))
s = o["summary"]
codes = {str(k): v for k, v in o.get("statusCodeDistribution", {}).items()}
errors = o.get("errorDistribution", {})
total = sum(codes.values())
secs = s.get("total") or 0
lat = o.get("latencyPercentiles", {})
ms = lambda v: None if v is None else round(v * 1e3, 2)
runs.append({
    "route": "/v1/" + route, "clients": int(clients), "seconds": round(secs, 2),
    "responses": total, "qps": round(total / secs, 1) if secs else None,
    "ok": codes.get("200", 0), "ok_qps": round(codes.get("200", 0) / secs, 1) if secs else None,
    "p50_ms": ms(lat.get("p50")), "p99_ms": ms(lat.get("p99")), "max_ms": ms(s.get("slowest")),
    "status_codes": codes, "connection_errors": errors,
    "server_p50_ms_200": ms(quantile(0.5, buckets(m_before), buckets(m_after))),
    "server_p99_ms_200": ms(quantile(0.99, buckets(m_before), buckets(m_after))),
    "loadavg_1m_before": float(load),
    "rss_before_kb": int(before), "rss_after_kb": int(after), "rss_peak_kb": int(hwm),
})
json.dump(runs, open(runs_path, "w"), indent=2)
r = runs[-1]
print(f"   {r['qps']} responses/s, {r['ok_qps']} ok/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, codes {codes}, errors {errors}, RSS {before} -> {after} kB", file=sys.stderr)
EOF
    done
done

curl -sf "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt" || true
kill -TERM "$SERVER"
wait "$SERVER" || true
SERVER=""
mkdir -p "$(dirname "$OUT")"
python3 - "$WORK/runs.json" "$OUT" "$READER_LABEL" "$INDEX" "$DURATION" "$ASK_TOP_K" "$SEARCH_TOP_K" "${EXTRA[*]:-}" "$WORK/metrics.txt" "$("$OHA" --version)" "$APPEND" <<'EOF'
import json, os, platform, re, sys, time
runs_path, out, reader_label, index, duration, ask_k, search_k, extra, metrics_path, oha, append = sys.argv[1:]
runs = json.load(open(runs_path))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_kb = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
metrics = open(metrics_path).read()
def metric(name):
    m = re.search(r"^" + re.escape(name) + r" ([0-9.e+-]+)$", metrics, re.M)
    return float(m.group(1)) if m else None
bw_sum, bw_n = metric("odqa_reader_batch_windows_sum"), metric("odqa_reader_batch_windows_count")
br_sum = metric("odqa_reader_batch_requests_sum")
session = {
    "created_unix": int(time.time()), "index": index, "reader": reader_label, "serve_flags": extra,
    "log": "RUST_LOG=warn", "duration": duration, "ask_top_k": int(ask_k), "search_top_k": int(search_k),
    "batching": {"forward_passes": bw_n, "mean_windows_per_pass": round(bw_sum / bw_n, 2) if bw_n else None,
                 "mean_requests_per_pass": round(br_sum / bw_n, 2) if bw_n else None},
    "runs": runs,
}
report = {
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1), "kernel": platform.release(),
                "note": "client (oha) and server share these cores"},
    "load": {"tool": oha, "bodies": "KLUE-MRC ODQA validation questions, cycled",
             "latency": "p50/p99/max: oha over every response (503s included); server 200s p50/p99: the server's latency histogram of its 200 answers, interpolated within buckets"},
    "sessions": [],
}
if append == "1" and os.path.exists(out + ".json"):
    report = json.load(open(out + ".json"))
report["sessions"].append(session)
json.dump(report, open(out + ".json", "w"), indent=2, ensure_ascii=False)

print(f"wrote {out}.json", file=sys.stderr)
EOF
render

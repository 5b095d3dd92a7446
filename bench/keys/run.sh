#!/usr/bin/env bash
# Keys with limits on every request: in memory vs Redis on loopback (docs/SCALING.md).
#   bench/keys/run.sh [seconds] [connections] [rounds]
# 1,000 configured keys, each with rpm/tpm limits high enough never to refuse; wrk picks a key
# per request at random. Pinned like bench/run: the gateway (one worker) on core 0; wrk, the
# nginx mock upstream (bench/macro/mock-nginx.conf, the same ~600-byte answer as bench/run)
# and redis-server on core 1. Rounds interleave memory and Redis. Per run: req/s, the
# gateway's CPU µs per request (utime+stime / requests), Redis script calls per request
# (INFO commandstats: evalsha + eval + fcall) and Redis's own CPU µs per request.
# Environment: OPENBRIDGE_BIN (default build/openbridge), BENCH_PIN=off to run unpinned.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DUR=${1:-8}
CONN=${2:-32}
ROUNDS=${3:-2}
BIN=${OPENBRIDGE_BIN:-build/openbridge}
[[ -x $BIN ]] || { echo "no gateway binary at $BIN (build it, or set OPENBRIDGE_BIN)" >&2; exit 1; }
for c in wrk nginx redis-server redis-cli node; do
  command -v "$c" >/dev/null || [[ -x /usr/sbin/$c ]] || { echo "$c is needed" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so   # the mock's chunked streams
[[ -f $ECHO_MODULE ]] || { echo "nginx's echo module is needed (apt-get install libnginx-mod-http-echo)" >&2; exit 1; }
ON_GW=() ON_LOAD=()
if [[ ${BENCH_PIN:-on} == on ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  ON_GW=(taskset -c 0) ON_LOAD=(taskset -c 1)
fi
dir=$(mktemp -d /tmp/openbridge-keys.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # wait_port PORT PID
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
cpu_ticks() { local s f; s=$(<"/proc/$1/stat"); read -ra f <<<"${s##*) }"; echo $((f[11] + f[12])); }
CLK_TCK=$(getconf CLK_TCK)
redis_cpu() { redis-cli -p "$RP" INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f", s }'; }

MOCK=$(free_port) RP=$(free_port) GW=$(free_port)
node bench/macro/gen.js bodies "$dir" >/dev/null
node bench/macro/gen.js render bench/macro/mock-nginx.conf "$dir/mock.conf" DIR="$dir" PORT="$MOCK" \
  JSON_BODY="@return:$dir/mock-json.txt" SSE_BODY="@chunked:$dir/mock-sse.txt" \
  ANTHROPIC_SSE_BODY="@chunked:$dir/mock-anthropic-sse.txt" ECHO_MODULE="$ECHO_MODULE" TLS_LISTEN=
"${ON_LOAD[@]}" "$NGINX" -p "$dir/" -c "$dir/mock.conf" -e "$dir/mock-error.log" >/dev/null 2>&1 & pids+=($!)
wait_port "$MOCK" "${pids[-1]}" || { echo "mock upstream did not start: $(cat "$dir/mock-error.log")" >&2; exit 1; }
"${ON_LOAD[@]}" redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pids+=($!)
wait_port "$RP" "${pids[-1]}" || { echo "redis-server did not start" >&2; exit 1; }
python3 - "$dir" "$MOCK" "$RP" <<'PY'
import json, sys
d, mock, rp = sys.argv[1], sys.argv[2], sys.argv[3]
keys = [{"name": f"k{i}", "token": f"sk-bench-key-{i:04d}", "limits": {"rpm": 1000000, "tpm": 1000000000}} for i in range(1000)]
base = {"providers": [{"group": "g", "name": "real-model", "base": f"http://127.0.0.1:{mock}", "key": "sk-up"}],
        "keys": keys, "admin": False}
for kind in ("memory", "redis"):
    if kind == "redis":
        base["state"] = {"path": "", "redis": f"redis://127.0.0.1:{rp}/0"}
    import os
    os.makedirs(f"{d}/{kind}", exist_ok=True)   # alone in its directory (the config watcher)
    json.dump(base, open(f"{d}/{kind}/config.json", "w"))
PY
cat > "$dir/keys.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"model":"g","messages":[{"role":"user","content":"hello"}],"max_tokens":16}'
request = function()
  wrk.headers["authorization"] = string.format("Bearer sk-bench-key-%04d", math.random(0, 999))
  return wrk.format()
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d non2xx=%d errors=%d\n", summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
run() {
  local kind=$1
  "${ON_GW[@]}" "$BIN" --config "$dir/$kind/config.json" --listen "127.0.0.1:$GW" --workers 1 >/dev/null 2>&1 &
  local gp=$!
  wait_port "$GW" "$gp" || { echo "gateway did not start" >&2; exit 1; }
  local url="http://127.0.0.1:$GW/v1/chat/completions"
  "${ON_LOAD[@]}" wrk -t1 -c"$CONN" -d2s -s "$dir/keys.lua" "$url" >/dev/null  # warm
  redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
  local c0 c1 r0 r1 out
  c0=$(cpu_ticks "$gp"); r0=$(redis_cpu)
  out=$("${ON_LOAD[@]}" wrk -t1 -c"$CONN" -d"${DUR}s" -s "$dir/keys.lua" "$url")
  c1=$(cpu_ticks "$gp"); r1=$(redis_cpu)
  sleep 0.1  # the last settlements (at most 1 ms late)
  local rps reqs bad calls
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(sed -n 's/.*BENCH requests=\([0-9]*\).*/\1/p' <<<"$out")
  bad=$(grep BENCH <<<"$out" | cut -d' ' -f3-)
  calls=$(redis-cli -p "$RP" INFO commandstats | awk -F'[=,:]' '/^cmdstat_(evalsha|eval|fcall):/ { n += $3 } END { print n + 0 }')
  python3 - "$kind" "$rps" "$reqs" "$((c1 - c0))" "$CLK_TCK" "$calls" "$r0" "$r1" "$bad" <<'PY'
import sys
kind, rps, reqs, ticks, hz, calls, r0, r1, bad = sys.argv[1:]
reqs = max(1, int(reqs))
cpu = int(ticks) / int(hz) * 1e6 / reqs
rcpu = (float(r1) - float(r0)) * 1e6 / reqs
print(f"| {kind} | {float(rps):,.0f} | {cpu:.1f} | {int(calls) / reqs:.3f} | {rcpu:.1f} | {reqs} ({bad}) |")
PY
  kill "$gp"; wait "$gp" 2>/dev/null || true
}
echo "bench/keys/run.sh $DUR $CONN $ROUNDS: wrk -t1 -c$CONN ${DUR}s per run, pinning ${ON_GW[*]:-off} (gateway) / ${ON_LOAD[*]:-off} (wrk, nginx mock, redis)"
echo
echo "| backend | req/s | gateway CPU µs/req | script calls/req | Redis CPU µs/req | requests (non-2xx, errors) |"
echo "| --- | --- | --- | --- | --- | --- |"
for ((i = 0; i < ROUNDS; i++)); do
  run memory
  run redis
done

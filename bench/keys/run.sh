#!/usr/bin/env bash
# Keys with limits on every request: in memory vs Redis on loopback (docs/SCALING.md).
#   bench/keys/run.sh [seconds] [connections]
# 1,000 configured keys, each with rpm/tpm limits high enough never to refuse; wrk picks a key
# per request at random. Reports req/s of both and Redis script calls per request.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-8}
CONN=${2:-32}
BIN=${OPENBRIDGE_BIN:-build/openbridge}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK=$(free_port); RP=$(free_port); GW=$(free_port); AD=$(free_port)
node tools/mock-provider/server.js --port "$MOCK" >/dev/null 2>&1 & pids+=($!)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pids+=($!)
sleep 1
python3 - "$dir" "$MOCK" "$RP" <<'PY'
import json, sys
d, mock, rp = sys.argv[1], sys.argv[2], sys.argv[3]
keys = [{"name": f"k{i}", "token": f"sk-bench-key-{i:04d}", "limits": {"rpm": 1000000, "tpm": 1000000000}} for i in range(1000)]
base = {"providers": [{"group": "g", "name": "m", "base": f"http://127.0.0.1:{mock}", "key": "sk-up"}], "keys": keys,
        "log": {"access": False} if False else {}}
base.pop("log")
json.dump(base, open(f"{d}/memory.json", "w"))
base["state"] = {"path": "", "redis": f"redis://127.0.0.1:{rp}/0"}
json.dump(base, open(f"{d}/redis.json", "w"))
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
  local cfg=$1
  "$BIN" --config "$dir/$cfg.json" --listen "127.0.0.1:$GW" --workers 1 --admin-listen "127.0.0.1:$AD" >/dev/null 2>&1 &
  local gp=$!
  sleep 1
  wrk -t1 -c"$CONN" -d2s -s "$dir/keys.lua" "http://127.0.0.1:$GW/v1/chat/completions" >/dev/null  # warm
  redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
  local out
  out=$(wrk -t1 -c"$CONN" -d"${DUR}s" -s "$dir/keys.lua" "http://127.0.0.1:$GW/v1/chat/completions")
  local rps reqs calls
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | sed -n 's/.*BENCH requests=\([0-9]*\).*/\1/p')
  calls=$(redis-cli -p "$RP" INFO commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
  echo "$cfg: $rps req/s, $(echo "$out" | grep BENCH | cut -d' ' -f2-), redis script calls ${calls:-0} ($(python3 -c "print(round(${calls:-0}/max(1,$reqs),2))") per request)"
  kill $gp; wait $gp 2>/dev/null || true
}
run memory
run redis
run memory
run redis

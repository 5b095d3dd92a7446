#!/usr/bin/env bash
# Packaging test (scripts/test stage "package"): builds the .deb with scripts/package, unpacks it
# into a scratch root (dpkg-deb -x: nothing is installed on this machine) and checks
#   - its files (binary, systemd unit, example config and environment file, docs) and control
#     data (Depends from the binary's libraries, /etc files as conffiles);
#   - the unit with `systemd-analyze verify`;
#   - the packaged binary serving with the packaged config (its provider base pointed at the mock
#     provider on a free port): the first answer, and the sd_notify messages READY=1 (once the
#     listener accepts), RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, through a
#     fake NOTIFY_SOCKET;
#   - the Kubernetes example parses and its config passes --check-config; so does the config
#     the Dockerfile's image serves (the packaged one).
# With OPENBRIDGE_PACKAGE_INSTALL=1 (as root; .ci/run sets it), it also installs the package with
# dpkg -i, checks it is on the PATH and verifies the installed unit, then purges it (refusing to
# run if openbridge is already installed).
# OPENBRIDGE_DEB=path skips the build. Prints "package: ok" at the end; fails on the first error.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

fail() { echo "package: FAIL: $*" >&2; exit 1; }
step() { echo "package: $*"; }

for tool in dpkg-deb systemd-analyze python3 node curl; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/setup --test installs it)"
done

deb=${OPENBRIDGE_DEB:-}
if [ -z "$deb" ]; then
  step "building the .deb (scripts/package)"
  deb=$(scripts/package | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
step "checking $deb"

tmp=$(mktemp -d)
pids=()
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then dpkg --purge openbridge >/dev/null 2>&1 || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
root=$tmp/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/DEBIAN"

# ---- files
for f in usr/bin/openbridge usr/lib/systemd/system/openbridge.service etc/openbridge/config.json \
         etc/openbridge/openbridge.env usr/share/doc/openbridge/README.md \
         usr/share/doc/openbridge/DEPLOYMENT.md usr/share/doc/openbridge/CONFIGURATION.md \
         usr/share/doc/openbridge/OPERATIONS.md usr/share/doc/openbridge/examples/config.json; do
  [ -f "$root/$f" ] || fail "/$f missing from the package"
done
[ -x "$root/usr/bin/openbridge" ] || fail "/usr/bin/openbridge is not executable"
mode=$(dpkg-deb -c "$deb" | awk '$NF == "./etc/openbridge/openbridge.env" { print $1 }')
[ "$mode" = "-rw-------" ] || fail "/etc/openbridge/openbridge.env is $mode, not -rw------- (it holds secrets)"
"$root/usr/bin/openbridge" --version | grep -q '^openbridge [0-9]' || fail "--version"

# ---- control data
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libssl3 libboost-json1.81.0 libsimdjson ca-certificates; do
  grep -q "$lib" <<<"$depends" || fail "Depends: lacks $lib ($depends)"
done
for f in /etc/openbridge/config.json /etc/openbridge/openbridge.env; do
  grep -qx "$f" "$tmp/DEBIAN/conffiles" || fail "$f is not a conffile (an upgrade would overwrite edits)"
done
for s in postinst prerm postrm; do sh -n "$tmp/DEBIAN/$s" || fail "$s: syntax"; done

# ---- the unit
unit=$root/usr/lib/systemd/system/openbridge.service
for line in 'Type=notify' 'ExecStart=/usr/bin/openbridge --config /etc/openbridge/config.json' \
            'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'DynamicUser=yes' \
            'ProtectSystem=strict' 'NoNewPrivileges=yes'; do
  grep -qxF "$line" "$unit" || fail "unit lacks '$line'"
done
# verify resolves the unit's commands and dependencies inside the root: give it the kill
# ExecReload names and this system's units (sysinit.target, ...), never overwriting ours.
mkdir -p "$root/bin"
cp /bin/kill "$root/bin/kill"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
if ! out=$(systemd-analyze verify --root="$root" /usr/lib/systemd/system/openbridge.service 2>&1); then
  fail "systemd-analyze verify: $out"
fi
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
step "files, control data and unit ok (systemd-analyze verify: clean)"

# ---- configs: the packaged one (the Docker image serves it too) and the Kubernetes example
export OPENAI_API_KEY=sk-package-test-provider-key
export OPENBRIDGE_CLIENT_TOKEN=sk-package-test-client-token-0123456789
export OPENBRIDGE_ADMIN_TOKEN=package-test-admin-token-0123456789
"$root/usr/bin/openbridge" --check-config "$root/etc/openbridge/config.json" >/dev/null 2>&1 ||
  fail "the packaged config does not pass --check-config"
python3 - "$repo/deploy/kubernetes/openbridge.yaml" "$tmp/k8s-config.json" <<'PY' || fail "Kubernetes example"
import json, sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
for want in [("ConfigMap", "openbridge-config"), ("Secret", "openbridge-keys"),
             ("Deployment", "openbridge"), ("Service", "openbridge"),
             ("Deployment", "redis"), ("Service", "redis")]:
    assert want in kinds, f"missing {want}"
cfg = json.loads(kinds[("ConfigMap", "openbridge-config")]["data"]["config.json"])
assert cfg["state"]["redis"] == "redis://redis:6379/0", cfg.get("state")
pod = kinds[("Deployment", "openbridge")]["spec"]["template"]["spec"]
c = pod["containers"][0]
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["readinessProbe"]["httpGet"]["port"] == "admin"
admin_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "admin")
assert cfg["admin"]["listen"].endswith(f":{admin_port}"), cfg["admin"]
assert "preStop" in c["lifecycle"]
secret = kinds[("Secret", "openbridge-keys")]["stringData"]
for name in ["OPENAI_API_KEY", "OPENBRIDGE_CLIENT_TOKEN", "OPENBRIDGE_ADMIN_TOKEN"]:
    assert name in secret, name
open(sys.argv[2], "w").write(json.dumps(cfg))
PY
# A gateway that does not know "state" yet only warns about it.
"$root/usr/bin/openbridge" --check-config "$tmp/k8s-config.json" >/dev/null 2>&1 ||
  fail "the Kubernetes example's config does not pass --check-config"
step "packaged config and Kubernetes example ok"

# ---- serve: the packaged binary and config against the mock provider
node tools/mock-provider/server.js --port 0 --host 127.0.0.1 --ready-file "$tmp/mock.ready" >/dev/null &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/mock.ready" ] && break; sleep 0.1; done
mock_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$tmp/mock.ready") ||
  fail "mock provider did not start"
python3 - "$root/etc/openbridge/config.json" "$tmp/config.json" "$mock_port" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
for p in cfg["providers"]:
    p["base"] = f"http://127.0.0.1:{sys.argv[3]}"
json.dump(cfg, open(sys.argv[2], "w"))
PY

notify_log=$tmp/notify.log
python3 tests/package/notify_listener.py "$tmp/notify.sock" "$notify_log" 60 &
pids+=($!)
for _ in $(seq 1 100); do [ -e "$notify_log" ] && break; sleep 0.1; done
[ -e "$notify_log" ] || fail "notify listener did not start"

# wait_notify N PATTERN: the Nth notify message matches PATTERN (within 10 s).
wait_notify() {
  for _ in $(seq 1 100); do
    [ "$(wc -l <"$notify_log")" -ge "$1" ] && break
    sleep 0.1
  done
  local msg
  msg=$(sed -n "${1}p" "$notify_log")
  [ -n "$msg" ] || fail "no notify message #$1 (wanted $2); got: $(cat "$notify_log")"
  grep -qE "$2" <<<"$msg" || fail "notify message #$1 is '$msg', wanted $2"
}

NOTIFY_SOCKET=$tmp/notify.sock "$root/usr/bin/openbridge" --config "$tmp/config.json" \
  --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --workers 1 2>"$tmp/gateway.log" &
gw=$!
pids+=($gw)
wait_notify 1 '^READY=1 STATUS=serving on 127\.0\.0\.1:[0-9]+, admin on 127\.0\.0\.1:[0-9]+$'
port=$(sed -n '1s/.*serving on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$notify_log")
admin_port=$(sed -n '1s/.*admin on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$notify_log")
# READY=1 means accepting: the first request must be answered, no retry.
answer=$(curl -sS --max-time 10 -w '\n%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
  -H "Authorization: Bearer $OPENBRIDGE_CLIENT_TOKEN" -H 'Content-Type: application/json' \
  -d '{"model":"fast","messages":[{"role":"user","content":"Hello"}]}') || fail "no answer: $(cat "$tmp/gateway.log")"
[ "$(tail -n 1 <<<"$answer")" = 200 ] || fail "answer: $answer"
grep -q '"model":"fast"' <<<"$answer" || fail "answer does not name the group: $answer"
grep -q '"chat.completion"' <<<"$answer" || fail "not a chat completion: $answer"
[ "$(curl -sS --max-time 5 "http://127.0.0.1:$admin_port/readyz")" = '{"status":"ready"}' ] || fail "/readyz"
step "the packaged binary answers on 127.0.0.1:$port (READY=1 first)"

kill -HUP "$gw"
wait_notify 2 '^RELOADING=1 MONOTONIC_USEC=[0-9]+ STATUS=reloading '
wait_notify 3 '^READY=1 STATUS=serving on 127\.0\.0\.1:'"$port"','
kill -TERM "$gw"
wait_notify 4 '^STOPPING=1 STATUS=draining'
code=0
wait "$gw" || code=$?
[ $code = 0 ] || fail "gateway exited with $code: $(cat "$tmp/gateway.log")"
[ "$(wc -l <"$notify_log")" = 4 ] || fail "extra notify messages: $(cat "$notify_log")"
step "sd_notify: READY=1, RELOADING=1 + READY=1 on SIGHUP, STOPPING=1 on SIGTERM; exit 0"

# ---- dpkg -i (opt-in: it installs on this machine, then purges): .ci/run asks for it.
if [ "${OPENBRIDGE_PACKAGE_INSTALL:-0}" = 1 ]; then
  [ "$(id -u)" = 0 ] || fail "OPENBRIDGE_PACKAGE_INSTALL=1 needs root (dpkg -i)"
  if dpkg -s openbridge >/dev/null 2>&1; then
    fail "openbridge is already installed on this machine: not touching it"
  fi
  dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
  installed=1
  [ "$(command -v openbridge)" = /usr/bin/openbridge ] || fail "openbridge is not on the PATH"
  openbridge --check-config /etc/openbridge/config.json >/dev/null 2>&1 ||
    fail "the installed config does not pass --check-config"
  out=$(systemd-analyze verify /usr/lib/systemd/system/openbridge.service 2>&1) &&
    [ -z "$out" ] || fail "systemd-analyze verify (installed): $out"
  dpkg --purge openbridge >/dev/null || fail "dpkg --purge openbridge"
  installed=0
  [ ! -e /usr/bin/openbridge ] && [ ! -e /etc/openbridge ] || fail "files left after dpkg --purge"
  step "dpkg -i: on the PATH, config and unit ok; dpkg --purge removed everything"
fi
echo "package: ok"

# Shared helpers for shell tests (integration/, boot/). Source it:
#   . "$(dirname "$0")/../lib.sh"
# Every test gets its own temp dir ($TMP), removed on exit with everything it started
# (register pids with `track_pid PID`). Report cases with `ok NAME` / `fail NAME WHY`;
# finish with `finish` (exit status 1 if any case failed).
# Append new helpers at the end; do not rewrite this file.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
SLUICE=$BUILD/sluice
SLUICE_TS=$BUILD/sluice-ts
SLUICE_VERIFIER=$BUILD/sluice-verifier
SHARED=${SHARED:-$TOP/../shared}
TMP=$(mktemp -d /tmp/sluice-test.XXXXXX)
_pids=()
_failed=0
_cleanups=()

track_pid() { _pids+=("$1"); }
on_exit() { _cleanups+=("$1"); }
_cleanup() {
	local c p
	for c in "${_cleanups[@]+"${_cleanups[@]}"}"; do eval "$c" >/dev/null 2>&1 || true; done
	for p in "${_pids[@]+"${_pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.1
	for p in "${_pids[@]+"${_pids[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap _cleanup EXIT

ok() { echo "ok $*"; }
fail() { local n=$1; shift; echo "not ok $n: $*"; _failed=1; }
# check NAME CMD... : ok if CMD exits 0
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "command failed: $*"; fi; }
# check_fails NAME CMD... : ok if CMD exits non-zero (and did not crash with a signal)
check_fails() {
	local n=$1 rc; shift
	"$@"; rc=$?
	if [ $rc -eq 0 ]; then fail "$n" "expected failure: $*"
	elif [ $rc -ge 128 ] && [ $rc -ne 255 ]; then fail "$n" "crashed (rc=$rc): $*"
	else ok "$n"; fi
}
finish() { exit $_failed; }

# A free TCP port on 127.0.0.1 (bind to port 0 and read the choice back).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT.
wait_port() {
	local port=$1 limit=${2:-10} i=0
	while [ $i -lt $((limit * 20)) ]; do
		(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# swtpm_up DIR [--unix]: a TPM for this test. Makes DIR (swtpm/setup.sh: EKs + EK certs by a
# local CA in DIR/ca, chain in DIR/ca/chain.pem) unless it already holds a state, starts
# swtpm on it (free loopback TCP ports, or unix sockets with --unix), sets SWTPM_TCTI to the
# TCTI string and stops it on exit. Returns non-zero (with the reason on stderr) on failure.
swtpm_up() {
	local dir=$1; shift
	SWTPM_TCTI=$("$TOP/swtpm/start.sh" "$dir" "$@") || return 1
	on_exit "'$TOP/swtpm/stop.sh' '$dir'"
	[ -s "$dir/swtpm.pid" ] && track_pid "$(cat "$dir/swtpm.pid")" # belt and braces
	export SWTPM_TCTI
}
# swtpm_down DIR: stop the swtpm of DIR now (the state is kept; swtpm_up DIR restarts it,
# which is a TPM reset: PCRs back to their reset values).
swtpm_down() { "$TOP/swtpm/stop.sh" "$1"; }

# attest_keys DIR: what an `sluice attest` test starts from, under DIR: a TPM (swtpm_up DIR/tpm;
# SWTPM_TCTI), its EK CA chain in DIR/ekca, a root DIR/root with an /etc/motd, the TPM's statement
# key (made by $FORGE, tests/helpers/verifier_forge, in DIR/out; trusted by the transparency
# service as DIR/trust/host.pem) and a verifier key DIR/v/verifier-key.pem (public part trusted as
# DIR/trust/verifier.pem). Returns non-zero, with the step on stderr, on failure.
attest_keys() {
	local d=$1
	swtpm_up "$d/tpm" >/dev/null 2>&1 || { echo "swtpm" >&2; return 1; }
	mkdir -p "$d/trust" "$d/out" "$d/v" "$d/ekca" "$d/root/etc"
	cp "$d/tpm/ca/chain.pem" "$d/ekca/"
	echo hello >"$d/root/etc/motd"
	"$FORGE" keys "$SWTPM_TCTI" "$d/out" && cp "$d/out/statement-key.pem" "$d/trust/host.pem" ||
		{ echo "statement key" >&2; return 1; }
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/v/verifier-key.pem" 2>/dev/null &&
		openssl pkey -in "$d/v/verifier-key.pem" -pubout -out "$d/trust/verifier.pem" 2>/dev/null ||
		{ echo "verifier key" >&2; return 1; }
}

# attest_services DIR [sluice-ts option...]: after attest_keys DIR, the services an `sluice attest`
# test talks to, on free loopback ports: sluice-ts (state DIR/ts, trusting DIR/trust, with the
# given options; its keys fetched to DIR/ts.keys) and sluice-verifier (state DIR/v, 2 threads)
# under DIR/policy.json: any host, PCRs 0-7 and 15, the root DIR/root as measured by $FORGE, and
# the release "tool-token" = DIR/token (a fresh secret). Sets TS, V (URLs), TSP, VP (ports) and
# VPID. Returns non-zero, with the reason on stderr, on failure.
attest_services() {
	local d=$1; shift
	TSP=$(free_port) VP=$(free_port)
	TS=http://127.0.0.1:$TSP V=http://127.0.0.1:$VP
	"$SLUICE_TS" --listen 127.0.0.1:$TSP --state "$d/ts" --trust-dir "$d/trust" "$@" >"$d/ts.log" 2>&1 &
	track_pid $!
	wait_port $TSP 10 || { echo "sluice-ts: $(cat "$d/ts.log")" >&2; return 1; }
	curl -sf "$TS/.well-known/scitt-keys" -o "$d/ts.keys" || { echo "ts keys" >&2; return 1; }
	echo "secret-$$-$RANDOM" >"$d/token"
	cat >"$d/policy.json" <<P
{"groups": [{"name": "g", "hosts": ["*"], "pcrs": {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 15]},
  "rootfs": ["$("$FORGE" measure "$d/root")"], "release": {"tool-token": "$d/token"}}]}
P
	"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$d/v" --policy "$d/policy.json" --ts "$TS" \
		--ts-key "$d/ts.keys" --ek-ca "$d/ekca" --threads 2 >"$d/v.log" 2>&1 &
	VPID=$!
	track_pid $VPID
	wait_port $VP 10 || { echo "sluice-verifier: $(cat "$d/v.log")" >&2; return 1; }
}

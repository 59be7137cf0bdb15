#!/usr/bin/env bash
# bench/verifier.sh: appraisals per second of sluice-verifier, including the SQLite writes and
# the registration of every verdict with sluice-ts, on loopback.
#
# Pre-generates N appraisal requests with swtpm (each with a fresh nonce: challenge, quote,
# certify, TPM-signed statement, registration), then POSTs them with C concurrent clients.
# Peer measured in the same run: tpm2_checkquote (tpm2-tools), the independent quote checker,
# run with 2 parallel processes -- the shell-tool way to check one quote, which is about one
# seventh of what an appraisal does.
# The load generator (tests/helpers/verifier_bench load) is one epoll thread with pre-formatted
# keep-alive requests, and prints its own CPU per request (client_cpu_ms): all three processes
# share the machine's 2 cores, so the CPU per appraisal lines are the figures least disturbed by
# other work on the machine.
# Environment: N (default 2000), C (concurrency, default 32), BUILD.
set -u
. "$(dirname "$0")/../tests/lib.sh"
N=${N:-2000}
C=${C:-32}
BENCH=$BUILD/tests/helpers/verifier_bench
FORGE=$BUILD/tests/helpers/verifier_forge
for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER" "$BENCH" "$FORGE"; do
	[ -x "$b" ] || { echo "bench/verifier.sh: missing $b (make all test-bins)" >&2; exit 1; }
done
T=$TMP
swtpm_up "$T/tpm" >/dev/null 2>&1 || { echo "bench/verifier.sh: swtpm failed" >&2; exit 1; }
TA=$SWTPM_TCTI
mkdir -p "$T/trust" "$T/out" "$T/vstate" "$T/ekca" "$T/root/etc"
cp "$T/tpm/ca/chain.pem" "$T/ekca/"
echo hello >"$T/root/etc/motd"
"$FORGE" keys "$TA" "$T/out" && cp "$T/out/statement-key.pem" "$T/trust/host.pem" || exit 1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/vstate/verifier-key.pem" 2>/dev/null
openssl pkey -in "$T/vstate/verifier-key.pem" -pubout -out "$T/trust/verifier.pem" 2>/dev/null
TSP=$(free_port); VP=$(free_port)
"$SLUICE_TS" --listen 127.0.0.1:$TSP --state "$T/ts" --trust-dir "$T/trust" --log-level error --threads 4 \
	>"$T/ts.log" 2>&1 &
TSPID=$!
track_pid $TSPID
wait_port $TSP 10 || { echo "bench/verifier.sh: sluice-ts did not start" >&2; cat "$T/ts.log"; exit 1; }
curl -sf "http://127.0.0.1:$TSP/.well-known/scitt-keys" -o "$T/ts.keys" || exit 1
DIGEST=$("$FORGE" measure "$T/root")
echo token >"$T/token"
cat >"$T/policy.json" <<P
{"policy_id": "bench", "nonce_ttl": 3600, "groups": [{"name": "bench", "hosts": ["*"],
 "pcrs": {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 15]}, "rootfs": ["$DIGEST"], "release": {"token": "$T/token"}}]}
P
"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$T/vstate" --policy "$T/policy.json" \
	--ts "http://127.0.0.1:$TSP" --ts-key "$T/ts.keys" --ek-ca "$T/ekca" --threads $C --queue 4096 --quiet \
	>"$T/verifier.log" 2>&1 &
VPID=$!
track_pid $VPID
wait_port $VP 10 || { echo "bench/verifier.sh: sluice-verifier did not start" >&2; cat "$T/verifier.log"; exit 1; }
V=http://127.0.0.1:$VP
"$SLUICE" enroll --verifier "$V" --host-id bench-1 --tcti "$TA" >/dev/null || exit 1

echo "generating $N appraisal requests with swtpm (fresh nonce each)..."
t0=$(date +%s.%N)
"$BENCH" gen "$N" "$T/requests" --tcti "$TA" --host-id bench-1 --verifier "$V" --verifier-key "$T/vstate/verifier.pub.pem" \
	--ts "http://127.0.0.1:$TSP" --ts-key "$T/ts.keys" --root "$T/root" --out "$T/out" || exit 1
echo "  generated in $(echo "$(date +%s.%N) - $t0" | bc) s"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system clock ticks
# The service's commits (one fsync and one signed tree head each) and the entries they held.
commits() { curl -sf "http://127.0.0.1:$TSP/metrics" | awk '/^sluice_ts_commit_(batches|entries)_total/ {printf "%s ", $2}'; }
c0=$(commits)
v0=$(cpu $VPID); t0=$(cpu $TSPID)
res=$("$BENCH" load "$T/requests" "$V" "$C")
v1=$(cpu $VPID); t1=$(cpu $TSPID)
c1=$(commits)
hz=$(getconf CLK_TCK)
echo "sluice-verifier: $res (concurrency $C)"
vms=$(echo "scale=3; ($v1 - $v0) * 1000 / $hz / $N" | bc)
echo "CPU per appraisal: verifier $vms ms, sluice-ts (verdict registration) $(echo "scale=3; ($t1 - $t0) * 1000 / $hz / $N" | bc) ms (load average now: $(cut -d' ' -f1 /proc/loadavg); other work on the machine lowers the rate)"
[ "$v1" -gt "$v0" ] && echo "verifier capacity from its CPU use: $(echo "1000 / $vms" | bc) appraisals/s per core"
set -- $c0 $c1
[ $# -eq 4 ] && [ "$3" -gt "$1" ] &&
	echo "sluice-ts: $(($4 - $2)) verdicts registered in $(($3 - $1)) commits ($(echo "scale=1; ($4 - $2) / ($3 - $1)" | bc) per fsync and signed tree head)"
# What the machine's cores could sustain if the three processes had them to themselves: an
# estimate from CPU use, not a measurement; the measured rate is the line above.
tms=$(echo "scale=3; ($t1 - $t0) * 1000 / $hz / $N" | bc)
cms=$(echo "$res" | sed -n 's/.*client_cpu_ms=\([0-9.]*\).*/\1/p')
ncpu=$(nproc)
[ "$v1" -gt "$v0" ] && [ -n "$cms" ] &&
	echo "CPU per appraisal, all three processes: $(echo "scale=3; $vms + $tms + $cms" | bc) ms -> at most $(echo "$ncpu * 1000 / ($vms + $tms + $cms)" | bc) appraisals/s on $ncpu idle cores (estimate)"
rate=$(echo "$res" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
aff=$(echo "$res" | sed -n 's/.*affirming=\([0-9]*\).*/\1/p')

# Peer: tpm2_checkquote on one of our quotes, 2 processes in parallel.
K=${K:-200}
AK=0x81010002
tpm2_quote -T "$TA" -c $AK -l sha256:0,1,2,3,4,5,6,7,15 -q 00112233445566778899aabbccddeeff -m "$T/q.msg" -s "$T/q.sig" \
	-o "$T/q.pcrs" -g sha256 >/dev/null 2>&1 && tpm2_readpublic -T "$TA" -c $AK -o "$T/ak.pem" -f pem >/dev/null 2>&1 \
	|| { echo "bench/verifier.sh: tpm2_quote failed" >&2; exit 1; }
t0=$(date +%s.%N)
seq $K | xargs -P2 -I{} tpm2_checkquote -u "$T/ak.pem" -m "$T/q.msg" -s "$T/q.sig" -f "$T/q.pcrs" -g sha256 \
	-q 00112233445566778899aabbccddeeff >/dev/null 2>&1
dt=$(echo "$(date +%s.%N) - $t0" | bc)
peer=$(echo "$K / $dt" | bc)
echo "tpm2_checkquote (xargs -P2): $K checks in $dt s = $peer quote checks/s"
echo "ratio: sluice-verifier full appraisals/s / tpm2_checkquote quote checks/s = $(echo "scale=1; $rate / $peer" | bc)x"
p50=$(echo "$res" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
p99=$(echo "$res" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
echo "summary: $rate appraisals/s, p50 $p50 ms, p99 $p99 ms; ratio to the 2000/s target: $(echo "scale=2; $rate / 2000" | bc)x ($([ "$rate" -ge 2000 ] && echo met || echo NOT met))"
echo "a published RATS verifier: ~400 req/s on 3 instances ($(echo "scale=1; $rate / 400" | bc)x)"
[ "$aff" = "$N" ] || { echo "bench/verifier.sh: only $aff of $N appraisals were affirming" >&2; exit 1; }

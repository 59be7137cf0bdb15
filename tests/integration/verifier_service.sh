#!/usr/bin/env bash
# sluice-verifier as a service, without a TPM: CLI (--help, policy check), HTTP errors and
# limits, the bounded request queue (503 + Retry-After), /metrics, SIGHUP reload keeping the
# old policy on a bad file, clean stop.
. "$(dirname "$0")/../lib.sh"
# reload: SIGHUP the verifier and wait (10 s at most) until it logged the outcome.
reload() {
	local n i=0
	n=$(grep -c 'policy reload' "$T/v.log")
	kill -HUP $VPID
	while [ "$(grep -c 'policy reload' "$T/v.log")" -le "$n" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
T=$TMP
for b in "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b"; finish; }
done

check help bash -c "\"$SLUICE_VERIFIER\" --help | grep -q 'policy check FILE'"
"$SLUICE_VERIFIER" --bogus >/dev/null 2>&1; [ $? -eq 2 ] && ok usage_exit_2 || fail usage_exit_2 "want exit 2"

echo secret >"$T/tok"
cat >"$T/good.json" <<EOF
{"policy_id": "svc-1", "groups": [{"name": "g", "hosts": ["*"], "pcrs": {"sha256": [0, 15]},
  "rootfs": ["sha256:$(printf '%064d' 1)"], "release": {"t": "tok"}}]}
EOF
check policy_check_good bash -c "\"$SLUICE_VERIFIER\" policy check \"$T/good.json\" >/dev/null"
echo '{"groups": [{"name": "g", "hosts": ["*"], "pcrs": {"sha256": [0]}, "rootfs": [], "typo": 1}]}' >"$T/bad.json"
out=$("$SLUICE_VERIFIER" policy check "$T/bad.json" 2>&1); rc=$?
[ $rc -eq 1 ] && [[ "$out" == *'unknown key "typo"'* ]] && ok policy_check_bad || fail policy_check_bad "rc=$rc $out"

# A transparency service (the verifier needs its key to start).
mkdir -p "$T/trust"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/k.pem" 2>/dev/null
openssl pkey -in "$T/k.pem" -pubout -out "$T/trust/k.pem" 2>/dev/null
TSP=$(free_port)
"$SLUICE_TS" --listen 127.0.0.1:$TSP --state "$T/ts" --trust-dir "$T/trust" --log-level warn >"$T/ts.log" 2>&1 &
track_pid $!
wait_port $TSP 10 || { fail setup "sluice-ts: $(cat "$T/ts.log")"; finish; }
curl -sf "http://127.0.0.1:$TSP/.well-known/scitt-keys" -o "$T/ts.keys" || { fail setup "ts keys"; finish; }

cp "$T/good.json" "$T/policy.json"
VP=$(free_port); V=http://127.0.0.1:$VP
"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$T/v" --policy "$T/policy.json" --ts "http://127.0.0.1:$TSP" \
	--ts-key "$T/ts.keys" --threads 2 --queue 1 --max-body 4096 >"$T/v.log" 2>&1 &
VPID=$!
track_pid $VPID
wait_port $VP 10 || { fail setup "sluice-verifier: $(cat "$T/v.log")"; finish; }
[ -s "$T/v/verifier.pub.pem" ] && [ "$(stat -c %a "$T/v/verifier-key.pem")" = 600 ] && ok key_created_0600 \
	|| fail key_created_0600 "$(ls -l "$T/v")"
check key_endpoint bash -c "curl -sf '$V/v1/key' | cmp -s - '$T/v/verifier.pub.pem'"

status() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
[ "$(status "$V/v1/hosts/nobody")" = 404 ] && grep -q host.unknown "$T/body" && ok hosts_404 || fail hosts_404 "$(cat "$T/body")"
[ "$(status -X POST -d '{"host_id":"nobody"}' "$V/v1/challenge")" = 404 ] && ok challenge_unenrolled_404 || fail challenge_unenrolled_404 "$(cat "$T/body")"
[ "$(status -X POST -d 'not json' "$V/v1/attest")" = 400 ] && ok malformed_400 || fail malformed_400 "$(cat "$T/body")"
[ "$(status -X POST -d '{"host_id":"x","evidence":"AAAA","statement":"","receipt":""}' "$V/v1/attest")" = 400 ] \
	&& grep -q evidence.malformed "$T/body" && ok evidence_malformed_400 || fail evidence_malformed_400 "$(cat "$T/body")"
[ "$(status -X POST -d '{"host_id":"x","ek_public":"!!","ak_public":"AAAA"}' "$V/v1/enroll")" = 400 ] && ok enroll_bad_b64_400 \
	|| fail enroll_bad_b64_400 "$(cat "$T/body")"
[ "$(status -X POST -d '{"enroll_id":"00000000000000000000000000000000","secret":"AAAA"}' "$V/v1/enroll/finish")" = 404 ] \
	&& ok enroll_finish_unknown_404 || fail enroll_finish_unknown_404 "$(cat "$T/body")"
[ "$(head -c 5000 /dev/zero | status -X POST --data-binary @- "$V/v1/attest")" = 413 ] && ok body_limit_413 || fail body_limit_413 "$(cat "$T/body")"
[ "$(status -X DELETE "$V/v1/attest")" = 405 ] && ok method_405 || fail method_405 "$(cat "$T/body")"

# CBOR bodies: the same API, concise problem details back.
PY=${PYTHON:-/usr/bin/python3}
cb() { "$PY" -c 'import sys, cbor2; sys.stdout.buffer.write(cbor2.dumps(eval(sys.argv[1])))' "$1"; }
cb '{"host_id": "nobody"}' >"$T/req.cbor"
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/cbor' -H 'Accept: application/cbor' \
	--data-binary @"$T/req.cbor" "$V/v1/challenge")
title=$("$PY" -c 'import sys, cbor2; print(cbor2.load(open(sys.argv[1], "rb"))[-1])' "$T/body" 2>&1)
[ "$code" = 404 ] && [ "$title" = host.unknown ] && ok cbor_problem_details || fail cbor_problem_details "$code $title"
printf '\xa1\x01' >"$T/bad.cbor"
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/cbor' --data-binary @"$T/bad.cbor" "$V/v1/challenge")
[ "$code" = 400 ] && grep -q 'CBOR body' "$T/body" && ok cbor_malformed_400 || fail cbor_malformed_400 "$code $(cat "$T/body")"

# The queue bound: one request held open mid-body fills --queue 1; the next gets 503 + Retry-After.
exec 7<>/dev/tcp/127.0.0.1/$VP
printf 'POST /v1/attest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{' >&7
for i in $(seq 40); do # until the held request reached the handler
	code=$(curl -s -D "$T/hdr" -o "$T/body" -w '%{http_code}' "$V/metrics")
	[ "$code" = 503 ] && break
	sleep 0.05
done
if [ "$code" = 503 ] && grep -qi '^Retry-After: 1' "$T/hdr"; then ok queue_full_503_retry_after; else fail queue_full_503_retry_after "got $code"; fi
exec 7>&-
for i in $(seq 40); do # until the closed connection left the queue
	m=$(curl -sf "$V/metrics") && break
	sleep 0.05
done
[[ "$m" == *"sluice_verifier_rejected_busy_total "[1-9]* ]] && [[ "$m" == *'sluice_verifier_http_requests_total'* ]] \
	&& ok metrics_after_queue || fail metrics_after_queue "$m"

# SIGHUP: a bad file is rejected and the old policy kept; a good one is taken.
cp "$T/bad.json" "$T/policy.json"; reload
grep -q 'policy reload rejected, keeping the old policy' "$T/v.log" && ok sighup_bad_policy_kept || fail sighup_bad_policy_kept "$(tail -n 3 "$T/v.log")"
sed 's/svc-1/svc-2/' "$T/good.json" >"$T/policy.json"; reload
grep -q 'policy reloaded (svc-2)' "$T/v.log" && ok sighup_good_policy || fail sighup_good_policy "$(tail -n 3 "$T/v.log")"
kill $VPID; wait $VPID; rc=$?
[ $rc -eq 0 ] && ok clean_stop || fail clean_stop "rc=$rc"

# Bodies are bounded per endpoint and decoded by a bounded reader: a verifier with the default
# --max-body (8 MiB) answers 4xx to bodies shaped to blow up in a tree decoder (an array of 8M
# zeros: ~70x as a libcbor tree, ~20x as jansson), also below the /v1/attest cap, and its peak
# RSS (VmHWM) stays under HWM_MAX_KB. The old tree decoder peaked at ~587 MiB on the first one.
HWM_MAX_KB=65536
VP2=$(free_port); V2=http://127.0.0.1:$VP2
"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP2 --state "$T/v2" --policy "$T/good.json" --ts "http://127.0.0.1:$TSP" \
	--ts-key "$T/ts.keys" --threads 2 --quiet >"$T/v2.log" 2>&1 &
VPID2=$!
track_pid $VPID2
if wait_port $VP2 10; then
	"$PY" - "$T" <<'PYEOF'
import struct, sys
t, n, m = sys.argv[1], (8 << 20) - 64, 900 << 10  # big: just under the default --max-body
for name, k in (("big", n), ("mid", m)):
    open(f"{t}/{name}.cbor", "wb").write(b"\xa1\x61a\x9a" + struct.pack(">I", k) + b"\x00" * k)
    open(f"{t}/{name}.json", "w").write('{"a":[' + "0," * (k // 2 - 1) + "0]}")
    # flat but with a huge number of keys: the shape check counts them
    open(f"{t}/{name}keys.json", "w").write("{" + ",".join(f'"k{i}":0' for i in range(k // 10)) + "}")
PYEOF
	for f in big.cbor mid.cbor big.json mid.json midkeys.json; do
		ct=application/json; [[ $f == *.cbor ]] && ct=application/cbor
		code=$(curl -s -o "$T/body" -w '%{http_code}' -H "Content-Type: $ct" --data-binary @"$T/$f" "$V2/v1/attest")
		hwm=$(awk '/^VmHWM:/ {print $2}' /proc/$VPID2/status 2>/dev/null)
		if [[ "$code" == 4[0-9][0-9] ]] && [ -n "$hwm" ] && [ "$hwm" -lt $HWM_MAX_KB ]; then
			ok "body_bounded_${f/./_}"
		else
			fail "body_bounded_${f/./_}" "HTTP $code, VmHWM ${hwm:-?} kB (max $HWM_MAX_KB): $(head -c 200 "$T/body")"
		fi
	done
	# Real-size requests still fit: a 200 KB attest body reaches the appraisal (evidence.malformed, not 413).
	"$PY" -c 'import base64,json,sys; print(json.dumps({"host_id":"x","evidence":base64.b64encode(b"\0"*150000).decode(),"statement":"","receipt":""}))' >"$T/real.json"
	code=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary @"$T/real.json" "$V2/v1/attest")
	[ "$code" = 400 ] && grep -q evidence.malformed "$T/body" && ok attest_body_200k_accepted || fail attest_body_200k_accepted "HTTP $code $(head -c 200 "$T/body")"
	kill $VPID2; wait $VPID2
else
	fail body_bounded "second verifier did not start: $(cat "$T/v2.log")"
fi
finish

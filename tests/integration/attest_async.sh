#!/usr/bin/env bash
# `sluice attest` against a transparency service in --async mode (POST /entries answers 303,
# GET /entries/{id} 302 until registered): the agent's registration and the verifier's verdict
# registration both poll with Retry-After, and the flow still ends affirming with the
# credential released. Also: the agent refuses a verdict signed by a key it did not pin.
. "$(dirname "$0")/../lib.sh"
FORGE=$BUILD/tests/helpers/verifier_forge
T=$TMP
for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER" "$FORGE"; do
	[ -x "$b" ] || { fail setup "missing $b"; finish; }
done
attest_keys "$T" 2>"$T/setup.err" || { fail setup "$(cat "$T/setup.err")"; finish; }
TA=$SWTPM_TCTI
TSP=$(free_port); VP=$(free_port); TS=http://127.0.0.1:$TSP; V=http://127.0.0.1:$VP
"$SLUICE_TS" --listen 127.0.0.1:$TSP --state "$T/ts" --trust-dir "$T/trust" --async --retry-after 1 \
	--log-level info >"$T/ts.log" 2>&1 &
track_pid $!
wait_port $TSP 10 || { fail setup "sluice-ts: $(cat "$T/ts.log")"; finish; }
curl -sf "$TS/.well-known/scitt-keys" -o "$T/ts.keys" || { fail setup "ts keys"; finish; }
DIGEST=$("$FORGE" measure "$T/root")
echo "secret-$$" >"$T/token"
cat >"$T/policy.json" <<P
{"groups": [{"name": "g", "hosts": ["*"], "pcrs": {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 15]},
  "rootfs": ["$DIGEST"], "release": {"tool-token": "$T/token"}}]}
P
"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$T/v" --policy "$T/policy.json" --ts "$TS" --ts-key "$T/ts.keys" \
	--ek-ca "$T/ekca" --threads 2 >"$T/v.log" 2>&1 &
track_pid $!
wait_port $VP 10 || { fail setup "sluice-verifier: $(cat "$T/v.log")"; finish; }
check enroll bash -c "'$SLUICE' enroll --verifier '$V' --host-id async-1 --tcti '$TA' >/dev/null"

args=(--verifier "$V" --ts "$TS" --ts-key "$T/ts.keys" --host-id async-1 --tcti "$TA" --root "$T/root"
	--out "$T/out" --cred-dir "$T/cred" --budget 20 --quiet)
if "$SLUICE" attest "${args[@]}" --verifier-key "$T/v/verifier.pub.pem" 2>"$T/err"; then
	cmp -s "$T/cred/tool-token" "$T/token" && ok attest_async_ts || fail attest_async_ts "credential differs"
else
	fail attest_async_ts "$(cat "$T/err")"
fi
grep -q ' 303 ' "$T/ts.log" && ok ts_answered_303 || fail ts_answered_303 "$(tail -n 5 "$T/ts.log")"

# A verdict must verify with the pinned verifier key: pin another key, and nothing is released.
rm -rf "$T/cred"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout -out "$T/other.pem" 2>/dev/null
if "$SLUICE" attest "${args[@]}" --verifier-key "$T/other.pem" 2>"$T/err"; then
	fail verdict_unpinned_key_refused "accepted"
else
	grep -q 'appraise: the verdict does not verify with the pinned verifier key' "$T/err" && [ ! -e "$T/cred" ] \
		&& ok verdict_unpinned_key_refused || fail verdict_unpinned_key_refused "$(cat "$T/err")"
fi
finish

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
attest_services "$T" --async --retry-after 1 --log-level info 2>"$T/setup.err" ||
	{ fail setup "$(cat "$T/setup.err")"; finish; }
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

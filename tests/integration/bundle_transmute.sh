#!/usr/bin/env bash
# A second independent implementation: @transmute/cose (npm, pinned in
# tests/interop/transmute/package-lock.json, installed with `npm ci`) verifies the statements,
# receipts and transparent statements libbundle makes (and rejects forgeries), by running the
# interop unit test with TRANSMUTE_VERIFY set. The transmute-made vds1 vector in
# ../shared/vectors/scitt is verified by libbundle in unit/test_bundle_vectors (other direction).
. "$(dirname "$0")/../lib.sh"
TM=$TOP/tests/interop/transmute
command -v node >/dev/null && command -v npm >/dev/null || { fail transmute "node and npm are required (nodejs)"; finish; }
if [ ! -e "$TM/node_modules/.package-lock.json" ] || [ "$TM/package-lock.json" -nt "$TM/node_modules/.package-lock.json" ]; then
	(cd "$TM" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
		{ fail npm_ci "$(tail -n 5 "$TMP/npm.log")"; finish; }
fi
ok npm_ci
V=$SHARED/vectors/scitt/vds1
check transmute_verifies_its_own_vector node "$TM/verify.mjs" receipt "$V/signed_statement.cose" "$V/receipt.cose" "$V/ts_public.jwk.json"
check_fails transmute_rejects_wrong_key node "$TM/verify.mjs" receipt "$V/signed_statement.cose" "$V/receipt.cose" "$V/issuer_public.jwk.json"
out=$(cd "$TOP" && TRANSMUTE_VERIFY="$TM/verify.mjs" "$BUILD/tests/unit/test_bundle_interop" 2>&1); rc=$?
n=$(grep -c '^# checked by @transmute/cose too' <<<"$out")
if [ $rc -eq 0 ] && [ "$n" -eq 2 ] && ! grep -q '^not ok' <<<"$out"; then ok transmute_verifies_libbundle_objects
else fail transmute_verifies_libbundle_objects "rc=$rc transmute rounds=$n: $(grep -E '^(not ok|#)' <<<"$out" | head -5 | tr '\n' '|')"; fi
finish

#!/usr/bin/env bash
# sluice statement / receipt / audit on real files: the third-party SCITT vectors (transmute
# vds=1, the production CCF vds=2 receipt) and evidence bundles built by an independent Python
# implementation (tests/interop/make_bundle.py: software AK and statement key, TPM structures
# marshalled from the TPM spec). The good bundle must pass every check; each faulty bundle
# must fail exactly the check that covers its fault. No TPM, no network.
. "$(dirname "$0")/../lib.sh"

PY=${PYTHON:-/usr/bin/python3}
V=$SHARED/vectors/scitt
[ -x "$SLUICE" ] || { fail setup "no $SLUICE"; finish; }
"$PY" -c 'import cbor2, cryptography' 2>/dev/null || { fail setup "$PY lacks python3-cbor2/python3-cryptography"; finish; }

# ---- statement inspect ------------------------------------------------------------------------
out=$("$SLUICE" statement inspect "$V/vds1/transparent_statement.cose" 2>&1)
if "$PY" -c 'import json,sys; j=json.load(sys.stdin); assert j["protected"]["alg_name"]=="ES256"; assert j["leaf_hash"]=="e2a490f119e66ae1e5a9940ea9b5ec2ae3e2dcd7d50327cb2465c3c90a191f81"; assert j["receipts"][0]["protected"]["vds"]==1' <<<"$out"; then
	ok inspect_transparent_statement
else fail inspect_transparent_statement "$out"; fi
n=0 bad=0
for f in "$V"/*.cose "$V"/*.scitt; do
	n=$((n + 1))
	"$SLUICE" statement inspect "$f" >"$TMP/i.json" 2>"$TMP/i.err" && "$PY" -m json.tool "$TMP/i.json" >/dev/null || { bad=$((bad + 1)); echo "# $f: $(cat "$TMP/i.err")"; }
done
[ $bad -eq 0 ] && [ $n -ge 10 ] && ok inspect_every_real_world_statement || fail inspect_every_real_world_statement "$bad of $n failed"
check_fails inspect_rejects_garbage "$SLUICE" statement inspect /etc/hostname
"$SLUICE" statement inspect >/dev/null 2>&1; [ $? -eq 2 ] && ok inspect_usage_exit_2 || fail inspect_usage_exit_2 "want 2"

# ---- statement verify -------------------------------------------------------------------------
check statement_verify_issuer_key "$SLUICE" statement verify "$V/vds1/signed_statement.cose" --key "$V/vds1/issuer_public.jwk.json"
check_fails statement_verify_wrong_key "$SLUICE" statement verify "$V/vds1/signed_statement.cose" --key "$V/vds1/ts_public.jwk.json"

# ---- receipt verify ---------------------------------------------------------------------------
check receipt_vds1 "$SLUICE" receipt verify --statement "$V/vds1/signed_statement.cose" --receipt "$V/vds1/receipt.cose" --key "$V/vds1/ts_public.jwk.json"
check receipt_vds1_transparent "$SLUICE" receipt verify --statement "$V/vds1/transparent_statement.cose" --keyset "$V/vds1/ts_public.jwk.json"
check receipt_ccf_production "$SLUICE" receipt verify --statement "$V/uvm_0.2.10.cose" --keyset "$V/esrp-cts-db.json"
check_fails receipt_vds1_wrong_key "$SLUICE" receipt verify --statement "$V/vds1/signed_statement.cose" --receipt "$V/vds1/receipt.cose" --key "$V/vds1/issuer_public.jwk.json"
check_fails receipt_ccf_untrusted "$SLUICE" receipt verify --statement "$V/uvm_0.2.10.cose" --keyset "$V/vds1/ts_public.jwk.json"
check_fails receipt_none_in_statement "$SLUICE" receipt verify --statement "$V/vds1/signed_statement.cose" --key "$V/vds1/ts_public.jwk.json"
cp "$V/vds1/receipt.cose" "$TMP/r.cose"
printf '\x00' | dd of="$TMP/r.cose" bs=1 seek=100 conv=notrunc 2>/dev/null
check_fails receipt_tampered "$SLUICE" receipt verify --statement "$V/vds1/signed_statement.cose" --receipt "$TMP/r.cose" --key "$V/vds1/ts_public.jwk.json"
"$SLUICE" receipt verify --statement x >/dev/null 2>&1; [ $? -eq 2 ] && ok receipt_usage_exit_2 || fail receipt_usage_exit_2 "want 2"

# ---- audit ------------------------------------------------------------------------------------
if ! "$PY" "$TOP/tests/interop/make_bundle.py" "$TMP" >"$TMP/mb.log" 2>&1; then
	fail make_bundles "$(tail -5 "$TMP/mb.log")"; finish
fi
audit() { "$SLUICE" audit "$TMP/$1.tar" --ts-key "$TMP/ts.pem" --verifier-key "$TMP/verifier.pem" "${@:2}"; }

out=$(audit good 2>&1); rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^pass ' <<<"$out")" -eq 9 ] && ! grep -q '^FAIL' <<<"$out"; then
	ok audit_good_bundle_passes_9_checks
else fail audit_good_bundle_passes_9_checks "rc=$rc $(tr '\n' '|' <<<"$out")"; fi
out=$(audit good --require-affirming --json 2>&1); rc=$?
"$PY" -c 'import json,sys; j=json.load(sys.stdin); assert j["ok"] and len(j["checks"])==9' <<<"$out" && [ $rc -eq 0 ] &&
	ok audit_json || fail audit_json "rc=$rc $out"
# each fault fails its own check, and only that one
expect_fail() { # variant check
	local out rc
	out=$(audit "$1" 2>&1); rc=$?
	if [ $rc -eq 1 ] && grep -q "^FAIL $2:" <<<"$out" && [ "$(grep -c '^FAIL' <<<"$out")" -eq 1 ]; then ok "audit_${1//-/_}"
	else fail "audit_${1//-/_}" "rc=$rc, want exactly FAIL $2: $(tr '\n' '|' <<<"$out")"; fi
}
expect_fail bad-quote-pcr quote
expect_fail bad-eventlog eventlog
expect_fail bad-certify certify
expect_fail wrong-verifier verdict
expect_fail verdict-other-nonce verdict
expect_fail verdict-other-statement verdict
expect_fail verdict-statement-other verdict-receipt
expect_fail receipt-other-tree receipt
expect_fail traversal bundle
expect_fail index-mismatch bundle
# a bundle whose verdict receipt is for the verdict itself (no verifier statement) still audits
out=$(audit verdict-receipt-direct 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q '^pass verdict-receipt: the verdict is in' <<<"$out" && ok audit_verdict_receipt_direct ||
	fail audit_verdict_receipt_direct "rc=$rc $(tr '\n' '|' <<<"$out")"
# verdict-statement.cose beside a bundle written without it is used (and checked)
mkdir -p "$TMP/side" && "$PY" - "$TMP/good.tar" "$TMP/side" <<'PYEOF'
import sys, tarfile, io, cbor2
src, d = sys.argv[1], sys.argv[2]
t = tarfile.open(src)
files = {m.name: t.extractfile(m).read() for m in t.getmembers()}
open(d + "/verdict-statement.cose", "wb").write(files.pop("verdict-statement.cose"))
idx = cbor2.loads(files.pop("index.cbor")); del idx["verdict-statement.cose"]
files["index.cbor"] = cbor2.dumps(idx, canonical=True)
out = tarfile.open(d + "/bundle.tar", "w", format=tarfile.USTAR_FORMAT)
for n, b in files.items():
    ti = tarfile.TarInfo(n); ti.size = len(b); out.addfile(ti, io.BytesIO(b))
out.close()
PYEOF
out=$("$SLUICE" audit "$TMP/side/bundle.tar" --ts-key "$TMP/ts.pem" --verifier-key "$TMP/verifier.pem" 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q 'statement read from beside the bundle' <<<"$out" && ok audit_verdict_statement_beside_bundle ||
	fail audit_verdict_statement_beside_bundle "rc=$rc $(tr '\n' '|' <<<"$out")"
# the wrong pinned keys
check_fails audit_wrong_ts_key "$SLUICE" audit "$TMP/good.tar" --ts-key "$TMP/other.pem" --verifier-key "$TMP/verifier.pem"
check_fails audit_wrong_verifier_key "$SLUICE" audit "$TMP/good.tar" --ts-key "$TMP/ts.pem" --verifier-key "$TMP/other.pem"
# truncated bundle
head -c 3000 "$TMP/good.tar" >"$TMP/cut.tar"
check_fails audit_truncated "$SLUICE" audit "$TMP/cut.tar" --ts-key "$TMP/ts.pem" --verifier-key "$TMP/verifier.pem"
"$SLUICE" audit "$TMP/good.tar" >/dev/null 2>&1; [ $? -eq 2 ] && ok audit_usage_exit_2 || fail audit_usage_exit_2 "want 2"
finish

#!/usr/bin/env bash
# libbundle against the real transparency service over loopback: statements signed by
# `sluice statement sign` (P-256, P-384, Ed25519) are registered with sluice-ts, and the
# receipts it returns verify with `sluice receipt verify` against its /.well-known/scitt-keys
# COSE_KeySet, and with the independent Python checker. Receipts must not verify for another
# statement or with another key.
. "$(dirname "$0")/../lib.sh"
PY=${PYTHON:-/usr/bin/python3}
CHECK="$PY $TOP/tests/interop/scitt_check.py"
[ -x "$SLUICE" ] && [ -x "$SLUICE_TS" ] || { fail setup "need $SLUICE and $SLUICE_TS"; finish; }
cd "$TMP" || exit 1
mkdir -p trust state

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed.pem 2>/dev/null
for k in p256 p384 ed; do openssl pkey -in $k.pem -pubout -out trust/$k.pem 2>/dev/null; done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
openssl pkey -in other.pem -pubout -out other.pub.pem 2>/dev/null
head -c 3000 /dev/urandom >evidence.bin

PORT=$(free_port)
"$SLUICE_TS" --listen 127.0.0.1:$PORT --state state --trust-dir trust --alg ES256,ES384,EdDSA 2>ts.log &
track_pid $!
wait_port "$PORT" 10 || { fail setup "sluice-ts did not listen: $(tail -3 ts.log)"; finish; }
curl -s -m 10 "http://127.0.0.1:$PORT/.well-known/scitt-keys" -o keys.cbor
"$PY" -c 'import cbor2; cbor2.loads(open("keys.cbor","rb").read())[0]' 2>/dev/null || { fail setup "no COSE_KeySet"; finish; }

register() { # statement -> receipt file; prints HTTP status
	curl -s -m 10 -o "$2" -w '%{http_code}' -X POST -H 'Content-Type: application/cose' --data-binary @"$1" \
		"http://127.0.0.1:$PORT/entries"
}
for k in p256 p384 ed; do
	if ! "$SLUICE" statement sign evidence.bin --key $k.pem --iss "https://host.example" --sub "rootfs:$k" -o $k.cose; then
		fail "sign_$k" "sluice statement sign failed"; continue
	fi
	s=$(register $k.cose $k.receipt)
	[ "$s" = 201 ] || { fail "register_$k" "HTTP $s: $(cat $k.receipt | head -c 200)"; continue; }
	check "receipt_verifies_$k" "$SLUICE" receipt verify --statement $k.cose --receipt $k.receipt --keyset keys.cbor
	check "statement_still_verifies_$k" "$SLUICE" statement verify $k.cose --key trust/$k.pem --preimage evidence.bin
done
# an independent verifier agrees (it reads one COSE_Key: take the first of the set)
"$PY" -c 'import cbor2; open("ts.cose_key","wb").write(cbor2.dumps(cbor2.loads(open("keys.cbor","rb").read())[0]))'
check python_verifies_ts_receipt $CHECK verify-receipt p256.cose p256.receipt ts.cose_key
# forgeries
check_fails receipt_other_statement "$SLUICE" receipt verify --statement p384.cose --receipt p256.receipt --keyset keys.cbor
check_fails receipt_other_key "$SLUICE" receipt verify --statement p256.cose --receipt p256.receipt --key other.pub.pem
# a statement from a key the service does not trust is refused, with CBOR problem details
"$SLUICE" statement sign evidence.bin --key other.pem --iss "https://host.example" --sub x -o other.cose
s=$(register other.cose other.out)
if [ "${s:0:1}" = 4 ] && "$PY" -c 'import cbor2,sys; d=cbor2.loads(open("other.out","rb").read()); assert -1 in d or -2 in d'; then
	ok untrusted_issuer_refused
else fail untrusted_issuer_refused "HTTP $s"; fi
finish

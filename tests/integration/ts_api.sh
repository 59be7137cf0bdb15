#!/usr/bin/env bash
# sluice-ts over loopback: SCRAPI endpoints in sync and async mode, receipts checked by an
# independent verifier (tests/helpers/ts_verify.py), registration policy negatives (each must
# answer the right 4xx with CBOR problem details and leave the log unchanged), torn-tail
# recovery, metrics, --help.
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
VERIFY="$PY $TOP/tests/helpers/ts_verify.py"
FORGE="$PY $TOP/tests/helpers/ts_forge.py"
cd "$TMP" || exit 1

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out iss.pem 2>/dev/null
mkdir -p trust && openssl pkey -in iss.pem -pubout -out trust/iss.pem 2>/dev/null
$FORGE iss.pem st || { fail setup "ts_forge.py failed"; finish; }
cp st/p384.pub.pem trust/p384.pem

TSPID=
start_ts() { # state-dir, extra args...
	local dir=$1; shift
	PORT=$(free_port)
	"$SLUICE_TS" --listen 127.0.0.1:$PORT --state "$dir" --trust-dir trust "$@" 2>>"$dir.log" &
	TSPID=$!; track_pid $TSPID
	wait_port "$PORT" 10
}
stop_ts() { kill -TERM "$TSPID" 2>/dev/null; wait "$TSPID" 2>/dev/null; }
URL() { echo "http://127.0.0.1:$PORT$1"; }
# post FILE -> prints status; body in post.out, headers in post.hdr
post() { curl -s -o post.out -D post.hdr -w '%{http_code}' -X POST -H 'Content-Type: application/cose' \
	--data-binary @"$1" "$(URL /entries)"; }
entries() { curl -s "$(URL /metrics)" | awk '/^sluice_ts_log_entries /{print $2}'; }
problem_title() { $PY -c 'import cbor2,sys; print(cbor2.loads(open(sys.argv[1],"rb").read())[-1])' post.out 2>/dev/null; }

# the independent verifier itself, against a receipt made by a third party (@transmute/cose)
V1=$SHARED/vectors/scitt/vds1
check "independent verifier accepts the transmute vds1 vector" $VERIFY receipt "$V1/signed_statement.cose" "$V1/receipt.cose" "$V1/ts_public.jwk.json"
$PY -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-3]^=1; open("v1bad.cose","wb").write(b)' "$V1/signed_statement.cose"
check_fails "independent verifier rejects it for a changed statement" $VERIFY receipt v1bad.cose "$V1/receipt.cose" "$V1/ts_public.jwk.json"

check "ts --help" bash -c "'$SLUICE_TS' --help | grep -q -- '--listen ADDR:PORT'"
check_fails "ts usage error" "$SLUICE_TS" --bogus

# ---- sync mode
start_ts sync --max-statement 65536 || fail start "sluice-ts did not listen"
curl -s "$(URL /.well-known/scitt-keys)" -o keys.cbor
check "keys endpoint gives a COSE_KeySet" $PY -c '
import cbor2,sys; k=cbor2.loads(open("keys.cbor","rb").read()); assert k[0][1]==2 and k[0][-1]==1 and len(k[0][2])==32'
kid64=$($PY -c 'import cbor2,base64; k=cbor2.loads(open("keys.cbor","rb").read()); print(base64.urlsafe_b64encode(k[0][2]).decode().rstrip("="))')
check "one key by kid" test "$(curl -s -o /dev/null -w '%{http_code}' "$(URL /.well-known/scitt-keys/$kid64)")" = 200
check "unknown kid -> 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$(URL /.well-known/scitt-keys/AAAA)")" = 404

s=$(post st/good.cose)
if [ "$s" = 201 ] && grep -qi '^content-type: application/cose' post.hdr && grep -qi '^location: /entries/0' post.hdr; then
	ok "sync register -> 201 with receipt"
else fail "sync register -> 201 with receipt" "status $s"; fi
cp post.out good.receipt
check "receipt verifies (independent verifier)" $VERIFY receipt st/good.cose good.receipt keys.cbor
s=$(post st/unprot.cose); cp post.out unprot.receipt
check "unprotected header accepted" test "$s" = 201
check "receipt binds the statement with its unprotected header emptied" $VERIFY receipt st/unprot.cose unprot.receipt keys.cbor
curl -s "$(URL /entries/1/statement)" -o logged.cose
check "logged record has an empty unprotected header" $PY -c '
import cbor2; t=cbor2.loads(open("logged.cose","rb").read()); assert t.tag==18 and t.value[1]=={}'
# tampered receipt / wrong statement must not verify
$PY -c 'import sys; b=bytearray(open("good.receipt","rb").read()); b[-5]^=1; open("bad.receipt","wb").write(b)'
check_fails "tampered receipt rejected" $VERIFY receipt st/good.cose bad.receipt keys.cbor
check_fails "receipt for another statement rejected" $VERIFY receipt st/unprot.cose good.receipt keys.cbor
check "GET /entries/0 -> 200 receipt" bash -c "curl -sf '$(URL /entries/0)' -o e0.receipt && $VERIFY receipt st/good.cose e0.receipt keys.cbor >/dev/null"

n0=$(entries)
neg() { # name expected-status expected-title file
	local s t
	s=$(post "$4"); t=$(problem_title)
	if [ "$s" = "$2" ] && grep -qi '^content-type: application/concise-problem-details+cbor' post.hdr && [ "$t" = "$3" ]; then
		ok "$1 -> $2 $3"
	else fail "$1" "got $s '$t', want $2 '$3'"; fi
}
neg "malformed CBOR" 400 "Malformed request" st/garbage.cose
neg "untagged" 400 "Malformed request" st/untagged.cose
neg "wrong tag" 400 "Malformed request" st/tag17.cose
neg "trailing bytes" 400 "Malformed request" st/trailing.cose
neg "indefinite length" 400 "Malformed request" st/indefinite.cose
neg "missing claims" 400 "Missing claims" st/noclaims.cose
neg "missing sub" 400 "Missing claims" st/nosub.cose
neg "missing kid" 400 "Confirmation Missing" st/nokid.cose
neg "bad signature" 400 "Bad Signature" st/badsig.cose
neg "detached payload" 400 "Payload Missing" st/detached.cose
neg "content type in hash envelope" 400 "Malformed request" st/ctype_envelope.cose
neg "unknown issuer" 400 "Rejected" st/unknown_kid.cose
neg "unknown crit label" 400 "Unsupported critical header" st/crit_unknown.cose
neg "oversize body" 413 "Payload Too Large" st/big.cose
s=$(curl -s -o post.out -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary @st/good.cose "$(URL /entries)")
check "wrong media type -> 415" test "$s" = 415
check "log unchanged after rejections" test "$(entries)" = "$n0"
s=$(curl -s -o post.out -w '%{http_code}' "$(URL /entries/999)"); t=$(problem_title)
check "unknown entry -> 404 problem details" test "$s/$t" = "404/Not Found"
s=$(curl -s -o /dev/null -w '%{http_code}' "$(URL /nowhere)")
check "unknown path -> 404" test "$s" = 404
P1=$PORT; PORT=$(free_port)
check_fails "a second sluice-ts on the same state is refused" "$SLUICE_TS" --listen 127.0.0.1:$PORT --state sync --trust-dir trust
PORT=$P1
check "metrics in Prometheus text" bash -c "curl -s '$(URL /metrics)' | grep -q '^sluice_ts_registration_seconds_bucket{le=\"+Inf\"} '"
check "one log line per request" grep -q 'POST /entries 201' sync.log
stop_ts

# ES384 with --alg ES256 only: refused; with the default list: accepted
start_ts sync --alg ES256
neg "algorithm not allowed" 400 "Bad Signature Algorithm" st/es384.cose
stop_ts

# back-pressure: a full commit queue answers 503 with Retry-After and problem details
start_ts busy --max-pending 1 --commit-window-us 300000 --retry-after 2
curl -s -o /dev/null -X POST -H 'Content-Type: application/cose' --data-binary @st/good.cose "$(URL /entries)" &
sleep 0.1
s=$(post st/unprot.cose); t=$(problem_title)
if [ "$s/$t" = "503/Service Unavailable" ] && grep -qi '^retry-after: 2' post.hdr; then ok "full queue -> 503 with Retry-After"
else fail "full queue -> 503" "got $s '$t'"; fi
wait $!
stop_ts

# open registration: the key of a protected x5chain; refused without the option
start_ts sync
neg "x5chain without open registration" 400 "Rejected" st/x5chain.cose
stop_ts
start_ts sync --open-registration
s=$(post st/x5chain.cose)
check "open registration accepts an x5chain statement" test "$s" = 201
neg "open registration: forged x5chain statement" 400 "Bad Signature" st/x5chain_forged.cose
n0=$(entries)
stop_ts

# ---- restart: torn tail truncated and reported, receipts still verify
size_before=$(stat -c %s sync/log)
printf '\x00\x00\x01\x00partial-record' >>sync/log
start_ts sync
check "torn tail reported" grep -q 'truncated a torn tail of 18 bytes' sync.log
check "torn tail truncated" test "$(stat -c %s sync/log)" = "$size_before"
check "entries kept across restart" test "$(entries)" = "$n0"
s=$(post st/es384.cose)
check "ES384 statement accepted by default" test "$s" = 201
check "old receipt verifies after restart" bash -c "curl -s '$(URL /.well-known/scitt-keys)' -o keys2.cbor && cmp -s keys.cbor keys2.cbor && $VERIFY receipt st/good.cose good.receipt keys2.cbor >/dev/null"
c=$(curl -s -o cons.cose -w '%{http_code}' "$(URL /consistency/1)")
check "consistency receipt served" test "$c" = 200
stop_ts
# a record whose bytes do not match its hash is cut too
$PY - sync/log <<'EOF'
import sys, struct
rec = b"\xd2\x84\x40\xa0\x40\x40"
open(sys.argv[1], "ab").write(struct.pack(">I", len(rec)) + b"\x11" * 32 + rec)
EOF
start_ts sync
check "corrupt tail record truncated" grep -q 'does not match its hash' sync.log
stop_ts

# ---- async mode: 303, then 302 or 200 with the receipt
start_ts async --async --retry-after 0
s=$(post st/good.cose)
loc=$(awk 'tolower($1)=="location:"{print $2}' post.hdr | tr -d '\r')
if [ "$s" = 303 ] && [[ "$loc" == /entries/op-* ]]; then ok "async register -> 303 Location"; else fail "async 303" "status $s loc $loc"; fi
for i in $(seq 1 50); do
	s=$(curl -s -o async.receipt -D async.hdr -w '%{http_code}' "$(URL "$loc")")
	[ "$s" = 302 ] && { sleep 0.05; continue; }
	break
done
check "async poll -> 200 with receipt" test "$s" = 200
check "async receipt verifies" bash -c "curl -s '$(URL /.well-known/scitt-keys)' -o ak.cbor && $VERIFY receipt st/good.cose async.receipt ak.cbor >/dev/null"
check "final Location names the entry" grep -qi '^location: /entries/0' async.hdr
s=$(curl -s -o post.out -w '%{http_code}' "$(URL /entries/op-5-0123456789abcdef)"); t=$(problem_title)
check "unknown operation -> 404 Operation Not Found" test "$s/$t" = "404/Operation Not Found"
stop_ts
finish

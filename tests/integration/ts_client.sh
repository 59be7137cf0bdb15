#!/usr/bin/env bash
# The SCRAPI client (libscrapi via `sluice register` / `sluice ts keys`): against a real
# sluice-ts (sync and async, statements made by libbundle, receipts verified against the
# pinned key and by the independent verifier), and against a misbehaving server (slow, 5xx
# then success, 429, endless 302, legacy 202, huge body, garbage receipt, redirect, problem
# details): every failure must be bounded in time and say clearly what went wrong.
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
VERIFY="$PY $TOP/tests/helpers/ts_verify.py"
LOAD=$BUILD/tests/helpers/ts_load
cd "$TMP" || exit 1

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out iss.pem 2>/dev/null
mkdir -p trust && openssl pkey -in iss.pem -pubout -out trust/iss.pem 2>/dev/null
"$LOAD" bsign iss.pem stmt.cose "evidence one" || { fail setup "bundle signing failed"; finish; }
"$LOAD" bsign iss.pem stmt2.cose "evidence two"
$PY "$TOP/tests/helpers/ts_forge.py" iss.pem forged

start_ts() { # name, args... ; sets P
	local n=$1; shift
	P=$(free_port)
	"$SLUICE_TS" --listen 127.0.0.1:$P --state "$n" --trust-dir trust "$@" >/dev/null 2>>"$n.log" &
	track_pid $!
	wait_port "$P" 10 || fail "$n start" "sluice-ts did not listen"
}
start_ts sync; SYNC=$P
start_ts async --async --retry-after 0; ASYNC=$P
start_ts other; OTHER=$P

check "sluice register --help" bash -c "'$SLUICE' register --help | grep -q -- '--ts-key'"
check "sluice ts --help" bash -c "'$SLUICE' ts --help | grep -q 'scitt-keys'"
check_fails "register usage error" "$SLUICE" register --ts http://127.0.0.1:1
if "$SLUICE" ts keys --ts "http://127.0.0.1:$SYNC" --out ts.keys >keys.txt 2>err.txt && grep -q '^kid [0-9a-f]\{64\} alg -7$' keys.txt; then
	ok "ts keys prints and pins the key set"
else fail "ts keys" "$(cat keys.txt err.txt)"; fi
"$SLUICE" ts keys --ts "http://127.0.0.1:$OTHER" --out other.keys >/dev/null 2>&1

if "$SLUICE" register --ts "http://127.0.0.1:$SYNC" --ts-key ts.keys --out r.cose --transparent t.cose stmt.cose 2>reg.txt; then
	ok "register (sync 201) and verify against the pinned key"
else fail "register sync" "$(cat reg.txt)"; fi
check "register reports entry and tree" grep -q 'registered: entry 0, leaf 0 in a tree of 1, receipt verified' reg.txt
check "receipt verifies independently" $VERIFY receipt stmt.cose r.cose ts.keys
check "transparent statement carries the receipt" $PY -c '
import cbor2; t=cbor2.loads(open("t.cose","rb").read()); assert t.value[1][394][0]==open("r.cose","rb").read()'
"$SLUICE" ts keys --ts "http://127.0.0.1:$ASYNC" --out async.keys >/dev/null 2>&1
if "$SLUICE" register --ts "http://127.0.0.1:$ASYNC/" --ts-key async.keys --out ra.cose stmt2.cose 2>rega.txt &&
	grep -q 'polls' rega.txt && ! grep -q ' 0 polls' rega.txt; then
	ok "register (async 303 then polling) verifies"
else fail "register async" "$(cat rega.txt)"; fi
check "async receipt verifies independently" $VERIFY receipt stmt2.cose ra.cose async.keys
if "$SLUICE" register --ts "http://127.0.0.1:$SYNC" --ts-key other.keys --out x.cose stmt.cose 2>wrong.txt; then
	fail "receipt under the wrong pinned key" "accepted"
else
	check "receipt under the wrong pinned key is refused" grep -q 'failed to verify the receipt' wrong.txt
fi
check "nothing written when verification failed" test ! -e x.cose
if "$SLUICE" register --ts "http://127.0.0.1:$SYNC" --ts-key ts.keys --out x.cose forged/badsig.cose 2>bad.txt; then
	fail "forged statement" "accepted"
else
	check "forged statement: problem details surface" grep -q 'HTTP 400 Bad Signature: the statement signature does not verify' bad.txt
fi
if "$SLUICE" register --ts http://192.0.2.1:8080 --ts-key ts.keys stmt.cose 2>insec.txt; then
	fail "plain http to a remote host" "allowed"
else check "plain http to a non-loopback host is refused" grep -q 'plain http' insec.txt; fi
check_fails "https to a dead port fails (bounded)" timeout 20 "$SLUICE" register --ts https://127.0.0.1:1 --ts-key ts.keys --budget 1 stmt.cose

# ---- misbehaving server: the receipt it replays is the real one for stmt.cose
BAD=$(free_port)
$PY "$TOP/tests/helpers/ts_badserver.py" "$BAD" r.cose ts.keys 2>bad.log &
track_pid $!
wait_port "$BAD" 10 || fail badserver "did not start"
reg() { # mode, extra args... ; sets RC, OUT, SECS
	local m=$1; shift
	local t0=$(date +%s.%N)
	"$SLUICE" register --ts "http://127.0.0.1:$BAD/$m" --ts-key ts.keys --out "$m.cose" "$@" stmt.cose 2>"$m.txt"
	RC=$?; OUT=$(cat "$m.txt"); SECS=$(echo "$(date +%s.%N) - $t0" | bc)
}
expect() { # name, want-rc, grep-pattern, max-seconds
	if [ "$RC" = "$2" ] && grep -q -- "$3" <<<"$OUT" && [ "$(echo "$SECS < $4" | bc)" = 1 ]; then ok "$1"
	else fail "$1" "rc=$RC after ${SECS}s: $OUT"; fi
}
reg ok;                                  expect "bad server: plain 201" 0 "receipt verified" 5
reg slow --timeout 1 --budget 2;         expect "bad server: slow answer times out within the budget" 1 "timed out" 5
reg flaky;                               expect "bad server: 503 twice then 201 (Retry-After honoured)" 0 "3 attempts" 5
reg ratelimit;                           expect "bad server: 429 with Retry-After 1 then 201" 0 "2 attempts" 5
[ "$(echo "$SECS >= 0.9" | bc)" = 1 ] && ok "429 Retry-After waited" || fail "429 Retry-After" "only ${SECS}s"
reg async;                               expect "bad server: 303, 302, 200" 0 "2 polls" 5
reg loop --budget 2;                     expect "bad server: endless 302 stops at the budget" 1 "still not registered after" 5
reg legacy;                              expect "bad server: legacy 202 operation then entry" 0 "receipt verified" 5
reg huge --max-response 65536;           expect "bad server: huge body refused" 1 "response larger than 65536 bytes" 5
reg garbage;                             expect "bad server: garbage receipt refused" 1 "failed to verify the receipt" 5
reg reject;                              expect "bad server: 400 problem details surface" 1 "HTTP 400 Rejected: issuer not allowed by policy" 5
reg redirect;                            expect "bad server: 307 is not followed" 1 "redirects are not followed" 5
reg lost;                                expect "bad server: forgotten operation (404) is submitted again" 0 "2 attempts" 5
reg foreign;                             expect "bad server: 303 to another origin is not polled" 1 "on another origin" 5
reg html --budget 1.5;                   expect "bad server: 500 text/html retried then bounded" 1 "HTTP 500" 5
# ---- HTTPS with a private CA
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
	-subj /CN=test-ca >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile san.ext >/dev/null 2>&1
TLS=$(free_port)
$PY "$TOP/tests/helpers/ts_badserver.py" "$TLS" r.cose ts.keys srv.pem srv.key 2>tls.log &
track_pid $!
wait_port "$TLS" 10 || fail tlsserver "did not start"
if "$SLUICE" register --ts "https://127.0.0.1:$TLS/ok" --ca-file ca.pem --ts-key ts.keys --out tls.cose stmt.cose 2>tls.txt; then
	ok "https with --ca-file registers and verifies"
else fail "https with --ca-file" "$(cat tls.txt)"; fi
check "https ts keys with --ca-file" bash -c "'$SLUICE' ts keys --ts 'https://127.0.0.1:$TLS/ok' --ca-file ca.pem >/dev/null 2>&1"
if "$SLUICE" register --ts "https://127.0.0.1:$TLS/ok" --ts-key ts.keys --budget 5 --out tls2.cose stmt.cose 2>tls2.txt; then
	fail "https with an unknown CA" "accepted"
else check "https with an unknown CA is refused" grep -q "TLS certificate verification failed" tls2.txt || cat tls2.txt; fi

for m in garbage huge reject redirect foreign slow loop html; do
	[ -e "$m.cose" ] && fail "no receipt written for $m" "$m.cose exists"
done
ok "no receipt file written on any failure"
finish

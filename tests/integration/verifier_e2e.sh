#!/usr/bin/env bash
# End to end on loopback: two swtpms (A and B), sluice-ts (trusted) + a second, untrusted
# sluice-ts, and sluice-verifier. Enrol -> challenge -> attest -> affirming verdict ->
# ActivateCredential recovers the payload; then every negative case, each with its own typed
# reason and nothing released; verifier restart keeps enrolments; policy reload takes effect.
. "$(dirname "$0")/../lib.sh"
# reload: SIGHUP the verifier and wait (10 s at most) until it logged the outcome.
reload() {
	local n i=0
	n=$(grep -c 'policy reload' "$T/verifier.log")
	kill -HUP $VPID
	while [ "$(grep -c 'policy reload' "$T/verifier.log")" -le "$n" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
FORGE=$BUILD/tests/helpers/verifier_forge
PY=${PYTHON:-/usr/bin/python3}
T=$TMP
for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER" "$FORGE"; do
	[ -x "$b" ] || { fail setup "missing $b (make all test-bins)"; finish; }
done
for t in tpm2_pcrextend openssl curl; do
	command -v $t >/dev/null || { fail setup "missing $t"; finish; }
done

# --- TPMs -----------------------------------------------------------------------------
swtpm_up "$T/tpmA" >/dev/null 2>&1 || { fail setup "swtpm A"; finish; }
TA=$SWTPM_TCTI
swtpm_up "$T/tpmB" >/dev/null 2>&1 || { fail setup "swtpm B"; finish; }
TB=$SWTPM_TCTI
mkdir -p "$T/ekca" "$T/trust" "$T/outA" "$T/outB" "$T/vstate"
cp "$T/tpmA/ca/chain.pem" "$T/ekca/a.pem"
# B's CA is trusted only after the verifier restarts (see below).

# A synthetic firmware event log, and TPM A's PCRs 0-7 extended to match it.
"$FORGE" tcglog "$T/tcg.log" >"$T/extends" || { fail setup "tcglog"; finish; }
while read -r e; do
	tpm2_pcrextend -T "$TA" "$e" >/dev/null 2>&1 || { fail setup "pcrextend $e"; finish; }
done <"$T/extends"

# Statement keys (trusted by the TS), the verifier key (pre-created so the TS can trust it),
# and a software key no AK certified.
"$FORGE" keys "$TA" "$T/outA" && cp "$T/outA/statement-key.pem" "$T/trust/host-a.pem" || { fail setup "keys A"; finish; }
"$FORGE" keys "$TB" "$T/outB" && cp "$T/outB/statement-key.pem" "$T/trust/host-b.pem" || { fail setup "keys B"; finish; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/vstate/verifier-key.pem" 2>/dev/null
openssl pkey -in "$T/vstate/verifier-key.pem" -pubout -out "$T/trust/verifier.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/foreign.pem" 2>/dev/null
openssl pkey -in "$T/foreign.pem" -pubout -out "$T/trust/foreign.pem" 2>/dev/null

# --- transparency services --------------------------------------------------------------
start_ts() { # name port
	"$SLUICE_TS" --listen 127.0.0.1:$2 --state "$T/$1" --trust-dir "$T/trust" --log-level warn \
		>"$T/$1.log" 2>&1 &
	track_pid $!
	wait_port $2 10
}
TSP=$(free_port); TS2P=$(free_port)
start_ts ts "$TSP" || { fail setup "sluice-ts"; cat "$T/ts.log"; finish; }
start_ts ts2 "$TS2P" || { fail setup "second sluice-ts"; finish; }
TS=http://127.0.0.1:$TSP TS2=http://127.0.0.1:$TS2P
curl -sf "$TS/.well-known/scitt-keys" -o "$T/ts.keys" || { fail setup "ts keys"; finish; }

# --- the reference root and the policy --------------------------------------------------
mkdir -p "$T/root/etc" "$T/root/bin"
echo "hello" >"$T/root/etc/motd"; echo "#!/bin/sh" >"$T/root/bin/app"; chmod 755 "$T/root/bin/app"
cp -a "$T/root" "$T/root2"; echo "tampered" >"$T/root2/etc/motd"
DIGEST=$("$FORGE" measure "$T/root") || { fail setup "measure"; finish; }
echo "tool-token-$$" >"$T/token.txt"
policy() { # file nonce_ttl rootfs-digest [pre-registered EK key hash]
	cat >"$1" <<EOF
{"policy_id": "test-$2-${3:7:8}", "nonce_ttl": $2, "enrollment": {"ek_public_keys": [${4:+\"$4\"}]},
 "groups": [{"name": "fleet", "hosts": ["host-*"], "pcrs": {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 15]},
   "rootfs": ["$3"], "release": {"tool-token": "$T/token.txt"}, "tools": ["stock_price"],
   "verdict_lifetime": 600}]}
EOF
}
policy "$T/policy.json" 30 "$DIGEST"
check policy_check bash -c "\"$SLUICE_VERIFIER\" policy check \"$T/policy.json\" >/dev/null"

VP=$(free_port); V=http://127.0.0.1:$VP
start_verifier() {
	"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$T/vstate" --policy "$T/policy.json" --ts "$TS" \
		--ts-key "$T/ts.keys" --ek-ca "$T/ekca" --threads 4 >>"$T/verifier.log" 2>&1 &
	VPID=$!
	track_pid $VPID
	wait_port $VP 10
}
start_verifier || { fail setup "sluice-verifier"; cat "$T/verifier.log"; finish; }
VKEY=$T/vstate/verifier.pub.pem

common=(--verifier "$V" --verifier-key "$VKEY" --ts "$TS" --ts-key "$T/ts.keys" --eventlog "$T/tcg.log")
forge() { # mode tcti host out [extra...]
	local mode=$1 tcti=$2 host=$3 out=$4; shift 4
	"$FORGE" attest "$mode" --tcti "$tcti" --host-id "$host" --root "$T/root" --out "$out" "${common[@]}" "$@" \
		2>>"$T/forge.err"
}
# expect NAME OUTPUT REASON: the verdict is contraindicated with that reason and carries no credential.
expect() {
	local n=$1 out=$2 want=$3
	case "$out" in
	*"status=contraindicated reason=$want credential=no"*) ok "$n" ;;
	*) fail "$n" "want contraindicated/$want without credential, got: $out $(tail -n 2 "$T/forge.err" | tr '\n' ' ')" ;;
	esac
}
# expect_refused NAME OUTPUT REASON: evidence not shown to come from the enrolled TPM (AK unknown
# or another host's, quote not signed by the enrolled AK) gets a 403 problem with that reason:
# no verdict signed, registered or stored.
expect_refused() {
	local n=$1 out=$2 want=$3
	case "$out" in
	*"status=refused-403 reason=$want credential=no"*) ok "$n" ;;
	*) fail "$n" "want a 403 problem $want, got: $out $(tail -n 2 "$T/forge.err" | tr '\n' ' ')" ;;
	esac
}
ts_accepted() { curl -sf "$TS/metrics" | awk '/^sluice_ts_registrations_total\{result="accepted"\}/ {print $2}'; }

# --- the case an unenrolled AK makes (before TPM B is enrolled) ---------------------------
check enroll_a "$SLUICE" enroll --out "$T/enrollA" --verifier "$V" --host-id host-a --tcti "$TA"
expect_refused unenrolled_ak "$(forge good "$TB" host-a "$T/outB" --save-request "$T/junk.json")" ak.unknown

# --- happy path: sluice attest, credential recovered in the TPM ---------------------------
if "$SLUICE" attest --tcti "$TA" --host-id host-a --root "$T/root" --out "$T/outA" --cred-dir "$T/credA" \
	"${common[@]}" --quiet 2>"$T/attest.err"; then
	if cmp -s "$T/credA/tool-token" "$T/token.txt" && [ "$(stat -c %a "$T/credA/tool-token")" = 400 ]; then
		ok attest_affirming_releases_payload
	else
		fail attest_affirming_releases_payload "credential missing or wrong: $(ls -l "$T/credA" 2>&1)"
	fi
else
	fail attest_affirming_releases_payload "$(cat "$T/attest.err")"
fi
for f in verdict.cose verdict-receipt.cose bundle.tar; do
	[ -s "$T/outA/$f" ] || fail "attest_outputs" "missing $f"
done
ok attest_outputs
check host_info_affirming bash -c "curl -sf '$V/v1/hosts/host-a' | grep -q '\"status\":\"affirming\"'"

# Anonymous junk for an enrolled host (evidence that decodes, from an unenrolled TPM, naming
# host-a): 403, nothing registered with the TS, host-a's record untouched.
n1=$(ts_accepted); h1=$(curl -sf "$V/v1/hosts/host-a")
code=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary @"$T/junk.json" "$V/v1/attest")
n2=$(ts_accepted); h2=$(curl -sf "$V/v1/hosts/host-a")
if [ "$code" = 403 ] && grep -q '"title":"ak.unknown"' "$T/body" && [ -n "$n1" ] && [ "$n1" = "$n2" ] && [ "$h1" = "$h2" ]; then
	ok junk_evidence_not_registered_nor_stored
else
	fail junk_evidence_not_registered_nor_stored "HTTP $code $(cat "$T/body"); TS accepted $n1 -> $n2; host $h1 -> $h2"
fi
# A host id outside the enrolment alphabet (here with a newline, which forged a log line): 400.
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r["host_id"]="host-a\nFORGED-LOG-LINE"; print(json.dumps(r))' \
	"$T/junk.json" >"$T/junk-nl.json"
code=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary @"$T/junk-nl.json" "$V/v1/attest")
[ "$code" = 400 ] && ! grep -q '^FORGED-LOG-LINE' "$T/verifier.log" && ok attest_host_id_invalid_400 \
	|| fail attest_host_id_invalid_400 "HTTP $code $(cat "$T/body")"

# --- enrolment rules ----------------------------------------------------------------------
enr() { "$FORGE" enroll "$@" --verifier "$V" 2>>"$T/forge.err"; }
expect_enroll() { [ "$2" = "enroll=$3" ] && ok "$1" || fail "$1" "want enroll=$3, got: $2"; }
expect_enroll enroll_ak_attributes "$(enr sk-as-ak --tcti "$TA" --host-id host-a)" ak.attributes
expect_enroll enroll_wrong_secret "$(enr wrong-secret --tcti "$TA" --host-id host-a)" enroll.secret.mismatch
expect_enroll enroll_no_cert_unendorsed "$(enr no-cert --tcti "$TB" --host-id host-c)" ek.unendorsed
out=$("$SLUICE" enroll --verifier "$V" --host-id host-b --tcti "$TB" 2>&1)
case "$out" in *ek.cert.untrusted*) ok enroll_untrusted_ek_ca ;; *) fail enroll_untrusted_ek_ca "$out" ;; esac

# --- restart keeps enrolments (and picks up B's CA) ----------------------------------------
kill $VPID; wait $VPID 2>/dev/null
cp "$T/tpmB/ca/chain.pem" "$T/ekca/b.pem"
start_verifier || { fail restart "verifier did not come back"; finish; }
out=$(forge good "$TA" host-a "$T/outA")
case "$out" in *"status=affirming reason=none credential=yes"*) ok restart_keeps_enrolment ;; *) fail restart_keeps_enrolment "$out" ;; esac

out=$("$SLUICE" enroll --verifier "$V" --host-id host-a --tcti "$TB" 2>&1)
case "$out" in *enroll.ek.mismatch*) ok reenroll_other_ek_refused ;; *) fail reenroll_other_ek_refused "$out" ;; esac
expect_enroll enroll_ek_cert_of_other_tpm "$(enr cert-of-other --tcti "$TB" --tcti2 "$TA" --host-id host-d)" ek.cert.mismatch
# A's EK with B's AK: the challenge is bound to both, and neither TPM can answer it.
expect_enroll enroll_ak_of_other_tpm "$(enr ek-of-other --tcti "$TB" --tcti2 "$TA" --host-id host-d)" activation-refused
check enroll_b "$SLUICE" enroll --verifier "$V" --host-id host-b --tcti "$TB"
check reenroll_same_ek "$SLUICE" enroll --verifier "$V" --host-id host-a --tcti "$TA"
out=$("$SLUICE" enroll --verifier "$V" --host-id host-z --tcti "$TA" 2>&1)
case "$out" in *enroll.ak.taken*) ok enroll_same_tpm_other_host_refused ;; *) fail enroll_same_tpm_other_host_refused "$out" ;; esac
out=$("$SLUICE" enroll --verifier "$V" --host-id web-1 --tcti "$TA" 2>&1)
case "$out" in *host.group.none*) ok enroll_no_group_refused ;; *) fail enroll_no_group_refused "$out" ;; esac

# --- negative appraisals: each its own typed reason, nothing released ---------------------
expect wrong_nonce "$(forge wrong-nonce "$TA" host-a "$T/outA")" nonce.unknown
expect replayed_nonce "$(forge replay "$TA" host-a "$T/outA")" nonce.replayed
expect pcr_altered "$(forge pcr-altered "$TA" host-a "$T/outA")" pcr.digest
expect tcg_event_altered "$(forge good "$TA" host-a "$T/outA" --eventlog "$T/tcg.log.altered")" pcr.mismatch
expect tcg_event_retyped "$(forge good "$TA" host-a "$T/outA" --eventlog "$T/tcg.log.retyped")" event.type
expect rootfs_unknown "$(forge good "$TA" host-a "$T/outA" --root "$T/root2")" rootfs.digest.unknown
expect statement_foreign_key "$(forge foreign-stmt-key "$TA" host-a "$T/outA" --foreign-key "$T/foreign.pem")" statement.signature
expect receipt_untrusted_ts "$(forge untrusted-receipt "$TA" host-a "$T/outA" --ts2 "$TS2")" receipt.untrusted
expect receipt_other_statement "$(forge other-receipt "$TA" host-a "$T/outA")" receipt.invalid
expect_refused quote_signature_forged "$(forge quote-sig-flip "$TA" host-a "$T/outA")" quote.signature
expect certify_signature_forged "$(forge certify-sig-flip "$TA" host-a "$T/outA")" statement.key.uncertified
expect statement_other_evidence "$(forge stmt-other-evidence "$TA" host-a "$T/outA")" statement.evidence.mismatch
expect pcr_selection_other "$(forge pcr-selection "$TA" host-a "$T/outA")" pcr.selection
expect nonce_of_other_host "$(forge nonce-other-host "$TA" host-a "$T/outA" --host2 host-b)" nonce.host
expect_refused host_a_as_host_b "$(forge good "$TA" host-b "$T/outA")" ak.host.mismatch

# The release of an affirming verdict for A, offered to TPM B: refused there, recovered by A.
out=$(forge release-other-tpm "$TA" host-a "$T/outA" --tcti2 "$TB")
case "$out" in
*"status=affirming"*"other-tpm=refused"*"own-tpm=unwrapped"*) ok release_blob_other_tpm_refused ;;
*) fail release_blob_other_tpm_refused "$out $(tail -n 2 "$T/forge.err")" ;;
esac

# --- policy: expired nonce (nonce_ttl 1), reload takes effect, a bad file keeps the old one ---
policy "$T/policy.json" 1 "$DIGEST"
reload
expect expired_nonce "$(forge expired "$TA" host-a "$T/outA" --sleep 2.2)" nonce.expired
policy "$T/policy.json" 30 "sha256:$(printf '%064d' 0)"
reload
expect policy_reload_takes_effect "$(forge good "$TA" host-a "$T/outA")" rootfs.digest.unknown
echo '{"groups": "broken"' >"$T/policy.json"
reload
grep -q "policy reload rejected" "$T/verifier.log" && ok policy_bad_reload_rejected || fail policy_bad_reload_rejected "no rejection logged"
expect policy_bad_reload_keeps_old "$(forge good "$TA" host-a "$T/outA")" rootfs.digest.unknown
# A pre-registered EK key (policy enrollment.ek_public_keys) enrols without a certificate.
tpm2_readpublic -T "$TB" -c 0x81010001 -o "$T/ekB.pem" -f pem >/dev/null 2>&1
EKH=sha256:$(openssl pkey -pubin -in "$T/ekB.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
policy "$T/policy.json" 30 "$DIGEST" "$EKH"
reload
expect_enroll enroll_preregistered_ek "$(enr no-cert --tcti "$TB" --host-id host-b)" ok

# --- CBOR bodies: a challenge asked and answered in CBOR --------------------------------------
"$PY" -c 'import sys, cbor2; sys.stdout.buffer.write(cbor2.dumps({"host_id": "host-a"}))' >"$T/req.cbor"
curl -sf -H 'Content-Type: application/cbor' -H 'Accept: application/cbor' --data-binary @"$T/req.cbor" \
	"$V/v1/challenge" -o "$T/chal.cbor"
out=$("$PY" -c 'import sys, cbor2; d = cbor2.load(open(sys.argv[1], "rb")); print(len(d["nonce"]), d["pcrs"])' "$T/chal.cbor" 2>&1)
[ "$out" = "64 sha256:0,1,2,3,4,5,6,7,15" ] && ok cbor_challenge || fail cbor_challenge "$out"

# --- the operator moves TPM B to another host id (allow_reenroll) -------------------------------
sed 's/"enrollment": {/"enrollment": {"allow_reenroll": ["host-y"], /' "$T/policy.json" >"$T/p2" && mv "$T/p2" "$T/policy.json"
reload
check enroll_move_allowed "$SLUICE" enroll --verifier "$V" --host-id host-y --tcti "$TB"
code=$(curl -s -o /dev/null -w '%{http_code}' "$V/v1/hosts/host-b")
[ "$code" = 404 ] && ok enroll_move_drops_old_binding || fail enroll_move_drops_old_binding "host-b still there ($code)"

# A sealed phase (a "released" record in the sluice log, as after a boot) cannot be presented again.
expect phase_sealed "$(forge sealed "$TB" host-y "$T/outB" --eventlog /nonexistent)" slog.sealed

# --- operations -------------------------------------------------------------------------------
m=$(curl -sf "$V/metrics")
case "$m" in *'sluice_verifier_appraisals_total{result="affirming"}'*) ok metrics ;; *) fail metrics "$m" ;; esac
check host_info_reasons bash -c "curl -sf '$V/v1/hosts/host-a' | grep -q '\"status\":\"contraindicated\".*rootfs.digest.unknown'"
code=$(curl -s -o /dev/null -w '%{http_code}' "$V/v1/hosts/nobody")
[ "$code" = 404 ] && ok host_unknown_404 || fail host_unknown_404 "got $code"
code=$(head -c 9000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- "$V/v1/attest")
[ "$code" = 413 ] && ok body_limit_413 || fail body_limit_413 "got $code"

# --- connections are served at once: an appraisal waiting on the transparency service does
# not hold up another connection's. A stand-in service answers every registration after 1 s
# (with a real receipt: the verifier checks its shape); 8 clients, each on its own connection,
# replay an authentic request (nonce.replayed: a signed verdict, so it is registered) at once.
# Served concurrently they all finish in ~1 s; one after the other on any thread would take
# 2 s or more. (A libmicrohttpd thread pool bound connections to the thread that accepted them.)
forge good "$TA" host-a "$T/outA" --save-request "$T/replay.json" >/dev/null
SLOWP=$(free_port)
"$PY" - "$SLOWP" "$T/outA/verdict-receipt.cose" <<'PYEOF' >"$T/slow.log" 2>&1 &
import http.server, sys, time
receipt = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(1)
        self.send_response(201)
        self.send_header("Content-Type", "application/cose")
        self.send_header("Content-Length", str(len(receipt)))
        self.end_headers()
        self.wfile.write(receipt)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # the default 5 can drop the 6th SYN: a 1 s retransmit
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PYEOF
track_pid $!
kill $VPID; wait $VPID 2>/dev/null
"$SLUICE_VERIFIER" --listen 127.0.0.1:$VP --state "$T/vstate" --policy "$T/policy.json" --ts "http://127.0.0.1:$SLOWP" \
	--ts-key "$T/ts.keys" --ek-ca "$T/ekca" --threads 8 >>"$T/verifier.log" 2>&1 &
VPID=$!
track_pid $VPID
if wait_port $VP 10 && wait_port $SLOWP 10 && [ -s "$T/replay.json" ]; then
	t0=$(date +%s.%N)
	for i in 1 2 3 4 5 6 7 8; do
		curl -s -m 20 -o "$T/conc.$i" -w '%{http_code}\n' --data-binary @"$T/replay.json" "$V/v1/attest" >"$T/conc.$i.code" &
	done
	wait_all=0
	for i in 1 2 3 4 5 6 7 8; do
		while [ ! -s "$T/conc.$i.code" ] && [ $wait_all -lt 400 ]; do sleep 0.05; wait_all=$((wait_all + 1)); done
	done
	dt=$(echo "$(date +%s.%N) - $t0" | bc)
	good=$(cat "$T"/conc.?.code | grep -c '^200$')
	replayed=$(grep -l '"nonce.replayed"' "$T"/conc.? 2>/dev/null | wc -l)
	if [ "$good" = 8 ] && [ "$replayed" = 8 ] && [ "$(echo "$dt < 1.9" | bc)" = 1 ]; then
		ok connections_served_concurrently
	else
		fail connections_served_concurrently "8 appraisals waiting 1 s each on the service took $dt s; HTTP 200: $good, nonce.replayed: $replayed"
	fi
	if [ -n "${VERBOSE:-}" ]; then echo "# concurrent appraisals: $dt s"
	fi
else
	fail connections_served_concurrently "set-up: verifier, stand-in service or saved request missing"
fi
finish

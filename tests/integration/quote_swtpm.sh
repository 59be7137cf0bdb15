#!/usr/bin/env bash
# sluice quote against a real swtpm: our quotes verify with our code AND tpm2_checkquote;
# a wrong nonce, a changed PCR value, a flipped signature byte and a foreign AK are
# rejected by both; tpm2_quote's output verifies with ours; unix-socket TCTI; a hung TPM
# times out instead of hanging.
. "$(dirname "$0")/../lib.sh"

for t in swtpm tpm2_checkquote tpm2_quote tpm2_pcrextend; do
	command -v $t >/dev/null || { fail "tools" "$t missing"; finish; }
done
swtpm_up "$TMP/tpm" || { fail swtpm_up "cannot start swtpm"; finish; }
T=$SWTPM_TCTI

check tpm_info "$SLUICE" tpm info --tcti "$T"
"$SLUICE" tpm info --tcti "$T" --json >"$TMP/info.json" && python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); assert d["ek_persistent"]["rsa"] and "ek_cert_rsa" in d, d' "$TMP/info.json" \
	&& ok tpm_info_json || fail tpm_info_json "bad JSON: $(cat "$TMP/info.json")"

N=$(openssl rand -hex 20)
if "$SLUICE" quote --tcti "$T" --nonce "$N" --out "$TMP/q"; then ok quote; else fail quote "sluice quote failed"; finish; fi
checkq() { # DIR NONCE
	tpm2_checkquote -u "$1/ak.pub.pem" -m "$1/quote.msg" -s "$1/quote.sig" -f "$1/quote.pcrs" -g sha256 -q "$2" >/dev/null 2>&1
}
check quote_verify_ours "$SLUICE" quote verify --in "$TMP/q" --nonce "$N"
check quote_verify_tpm2_checkquote checkq "$TMP/q" "$N"

# wrong nonce
N2=$(openssl rand -hex 20)
check_fails nonce_wrong_ours "$SLUICE" quote verify --in "$TMP/q" --nonce "$N2"
check_fails nonce_wrong_checkquote checkq "$TMP/q" "$N2"

# a changed PCR value (flip one byte of the last value in the PCR file)
cp -r "$TMP/q" "$TMP/pcr"
python3 - "$TMP/pcr/quote.pcrs" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
# serialized format: 132-byte TPML_PCR_SELECTION, u32 n, TPML_DIGEST[n]; first digest of first TPML_DIGEST
off = 136 + 4 + 2
b[off] ^= 1
open(p, "wb").write(b)
PY
check_fails pcr_changed_ours "$SLUICE" quote verify --in "$TMP/pcr" --nonce "$N"
check_fails pcr_changed_checkquote checkq "$TMP/pcr" "$N"

# a flipped signature byte (inside s of the ECDSA signature, the last byte)
cp -r "$TMP/q" "$TMP/sig"
python3 - "$TMP/sig/quote.sig" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-1] ^= 1; open(p, "wb").write(b)
PY
check_fails sig_flipped_ours "$SLUICE" quote verify --in "$TMP/sig" --nonce "$N"
check_fails sig_flipped_checkquote checkq "$TMP/sig" "$N"

# a flipped byte of the signed message (e.g. in the clock info)
cp -r "$TMP/q" "$TMP/msg"
python3 - "$TMP/msg/quote.msg" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-40] ^= 1; open(p, "wb").write(b)
PY
check_fails msg_flipped_ours "$SLUICE" quote verify --in "$TMP/msg" --nonce "$N"
check_fails msg_flipped_checkquote checkq "$TMP/msg" "$N"

# the quote checked against another TPM's AK fails
swtpm_up "$TMP/tpm2" --unix || { fail swtpm_up2 "cannot start the second swtpm"; finish; }
U=$SWTPM_TCTI
case "$U" in swtpm:path=*) ok unix_tcti_string ;; *) fail unix_tcti_string "$U" ;; esac
check ak_other_tpm "$SLUICE" tpm ak --tcti "$U" --pub "$TMP/ak2.pub"
check_fails foreign_ak_ours "$SLUICE" quote verify --in "$TMP/q" --nonce "$N" --ak "$TMP/ak2.pub"

# a quote over the unix-socket TCTI, several banks
if "$SLUICE" quote --tcti "$U" --nonce "$N" --pcrs sha1:0,1,2+sha256:0-7,15 --out "$TMP/qu"; then
	check quote_unix_ours "$SLUICE" quote verify --in "$TMP/qu" --nonce "$N"
	check quote_unix_checkquote checkq "$TMP/qu" "$N"
else
	fail quote_unix "sluice quote over $U failed"
fi

# the AK is a primary of the endorsement hierarchy: evicted and re-created it is the same key
n1=$("$SLUICE" tpm ak --tcti "$U" | awk '{print $NF}')
check ak_evict "$SLUICE" tpm ak --tcti "$U" --evict
n2=$("$SLUICE" tpm ak --tcti "$U" | awk '{print $NF}')
[ -n "$n1" ] && [ "$n1" = "$n2" ] && ok ak_recreated_same_name || fail ak_recreated_same_name "$n1 vs $n2"
# a foreign key persisted at the AK handle is refused, not used or overwritten
"$SLUICE" tpm ak --tcti "$U" --evict >/dev/null
(cd "$TMP" && TPM2TOOLS_TCTI=$U tpm2_createprimary -C o -G ecc -c "$TMP/foreign.ctx" >/dev/null 2>&1 &&
	TPM2TOOLS_TCTI=$U tpm2_evictcontrol -C o -c "$TMP/foreign.ctx" 0x81010002 >/dev/null 2>&1 &&
	TPM2TOOLS_TCTI=$U tpm2_flushcontext -t >/dev/null 2>&1)
"$SLUICE" quote --tcti "$U" --nonce "$N" --out "$TMP/foreign" 2>"$TMP/foreign.err"; rc=$?
[ $rc -eq 1 ] && grep -q "different object" "$TMP/foreign.err" && ok foreign_key_at_ak_handle_refused ||
	fail foreign_key_at_ak_handle_refused "rc=$rc $(cat "$TMP/foreign.err")"

# PCR 15 extended after the quote: the old quote with fresh PCR values must fail
TPM2TOOLS_TCTI=$T tpm2_pcrextend 15:sha256=$(printf '%064d' 1) >/dev/null 2>&1
"$SLUICE" quote --tcti "$T" --nonce "$N" --out "$TMP/q15" >/dev/null 2>&1
cp -r "$TMP/q" "$TMP/mix"; cp "$TMP/q15/quote.pcrs" "$TMP/mix/quote.pcrs"
check_fails pcr15_extended_ours "$SLUICE" quote verify --in "$TMP/mix" --nonce "$N"
check_fails pcr15_extended_checkquote checkq "$TMP/mix" "$N"
check quote_after_extend_ours "$SLUICE" quote verify --in "$TMP/q15" --nonce "$N"

# tpm2_quote's output (same AK, persistent) verifies with ours
mkdir -p "$TMP/tq"
if TPM2TOOLS_TCTI=$T tpm2_quote -c 0x81010002 -l sha256:0,1,2,3,4,5,6,7,15 -q "$N" -m "$TMP/tq/quote.msg" \
	-s "$TMP/tq/quote.sig" -o "$TMP/tq/quote.pcrs" -g sha256 >/dev/null 2>&1; then
	cp "$TMP/q/ak.pub" "$TMP/tq/"
	check tpm2_quote_verifies_ours "$SLUICE" quote verify --in "$TMP/tq" --nonce "$N"
	check_fails tpm2_quote_wrong_nonce_ours "$SLUICE" quote verify --in "$TMP/tq" --nonce "$N2"
else
	fail tpm2_quote_verifies_ours "tpm2_quote failed"
fi

# PCR extends through the sluice event log, replayed onto a quote (a fresh TPM: swtpm_up
# on a new state; PCRs 0-7 are zero there, so an empty firmware log replays to them)
swtpm_up "$TMP/tpm3" || { fail swtpm_up3 "cannot start swtpm 3"; finish; }
T3=$SWTPM_TCTI
check extend_rootfs "$SLUICE" tpm extend --tcti "$T3" --pcr 15 --type 1 --text "rootfs sha256:00ff" --slog "$TMP/s.slog"
cp "$TMP/s.slog" "$TMP/s1.slog"
check extend_note "$SLUICE" tpm extend --tcti "$T3" --pcr 15 --text "a note" --slog "$TMP/s.slog"
"$SLUICE" quote --tcti "$T3" --nonce "$N" --pcrs sha1:0-7,15+sha256:0-7,15 --out "$TMP/qs" >/dev/null
: >"$TMP/empty.log"
check slog_replays_to_quote "$SLUICE" quote verify --in "$TMP/qs" --nonce "$N" --slog "$TMP/s.slog" --eventlog "$TMP/empty.log"
check_fails slog_missing_record "$SLUICE" quote verify --in "$TMP/qs" --nonce "$N" --slog "$TMP/s1.slog"
python3 - "$TMP/s.slog" "$TMP/s2.slog" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[2], "wb").write(b)   # last content byte
PY
check_fails slog_content_changed "$SLUICE" quote verify --in "$TMP/qs" --nonce "$N" --slog "$TMP/s2.slog"
check_fails slog_not_cbor "$SLUICE" quote verify --in "$TMP/qs" --nonce "$N" --slog "$TMP/tpm3/swtpm.pid"

# the statement key: certified by the AK (checked by our verifier code inside the command),
# and its ES256 signature over a SHA-256 digest verifies with openssl as a plain ECDSA key
D=$(printf 'sluice statement' | sha256sum | cut -c1-64)
if out=$("$SLUICE" tpm sk --tcti "$T" --pem "$TMP/sk.pem" --certify "$TMP/skc" --nonce "$N" --sign "$D"); then
	echo "$out" | grep -q '^certify ok' && ok sk_certify || fail sk_certify "$out"
	python3 - "$(echo "$out" | awk '/^signature/{print $2}')" "$TMP/sk.sig" <<'PY'
import sys
rs = bytes.fromhex(sys.argv[1]); r, s = rs[:32], rs[32:]
def i(x):
    x = x.lstrip(b"\0") or b"\0"
    if x[0] & 0x80: x = b"\0" + x
    return b"\x02" + bytes([len(x)]) + x
body = i(r) + i(s)
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
	check sk_sign_es256_openssl sh -c "printf 'sluice statement' | openssl dgst -sha256 -verify '$TMP/sk.pem' -signature '$TMP/sk.sig' >/dev/null"
	check_fails sk_sign_other_message sh -c "printf 'sluice statemenT' | openssl dgst -sha256 -verify '$TMP/sk.pem' -signature '$TMP/sk.sig' >/dev/null"
else
	fail sk_certify "sluice tpm sk failed"
fi

# PCR 15 extended continuously by another client while we quote: every quote still
# verifies (the read-back retry keeps values and quote consistent)
(
	for i in $(seq 200); do
		TPM2TOOLS_TCTI=$T tpm2_pcrextend "15:sha256=$(printf '%064x' "$i")" >/dev/null 2>&1 || true
	done
) &
ext=$!
track_pid $ext
racing_ok=1
for i in 1 2 3 4 5; do
	"$SLUICE" quote --tcti "$T" --nonce "$N" --pcrs sha256:15 --repeat 20 --out "$TMP/race" >"$TMP/race.out" 2>&1 &&
		sed 's/^/# /' "$TMP/race.out" &&
		"$SLUICE" quote verify --in "$TMP/race" --nonce "$N" >/dev/null 2>&1 &&
		checkq "$TMP/race" "$N" || { racing_ok=0; break; }
done
kill $ext 2>/dev/null; wait $ext 2>/dev/null
[ $racing_ok = 1 ] && ok quote_while_pcr_extended || fail quote_while_pcr_extended "a quote failed while PCR 15 was being extended"

# nothing transient left in the TPM (no resource manager on the swtpm TCTI)
left=$(TPM2TOOLS_TCTI=$T tpm2_getcap handles-transient 2>/dev/null; TPM2TOOLS_TCTI=$T tpm2_getcap handles-loaded-session 2>/dev/null)
[ -z "$left" ] && ok no_transient_leftovers || fail no_transient_leftovers "$left"

# owner authorisation set: the AK / statement key cannot be persisted; they are used as
# transient primaries (the same keys) and flushed; quotes and certifications still verify
ak3=$("$SLUICE" tpm ak --tcti "$T3" | awk '{print $NF}')
"$SLUICE" tpm ak --tcti "$T3" --evict >/dev/null
TPM2TOOLS_TCTI=$T3 tpm2_changeauth -c o sluice-owner >/dev/null 2>&1 || fail owner_auth "tpm2_changeauth failed"
out=$("$SLUICE" tpm ak --tcti "$T3")
case "$out" in "ak transient"*) ok ak_transient_with_owner_auth ;; *) fail ak_transient_with_owner_auth "$out" ;; esac
[ "$(echo "$out" | awk '{print $NF}')" = "$ak3" ] && ok ak_transient_same_name || fail ak_transient_same_name "$out vs $ak3"
if "$SLUICE" quote --tcti "$T3" --nonce "$N" --out "$TMP/q3" >/dev/null; then
	check quote_transient_ak_ours "$SLUICE" quote verify --in "$TMP/q3" --nonce "$N"
	check quote_transient_ak_checkquote checkq "$TMP/q3" "$N"
else
	fail quote_transient_ak "sluice quote failed with owner auth set"
fi
"$SLUICE" tpm sk --tcti "$T3" --certify "$TMP/skc3" | grep -q '^certify ok' && ok sk_transient_certify || fail sk_transient_certify "certify failed"
left=$(TPM2TOOLS_TCTI=$T3 tpm2_getcap handles-transient 2>/dev/null)
[ -z "$left" ] && ok no_transient_leftovers_owner_auth || fail no_transient_leftovers_owner_auth "$left"

# usage errors exit 2
"$SLUICE" quote --tcti "$T" --out "$TMP/x" >/dev/null 2>&1; [ $? -eq 2 ] && ok usage_no_nonce || fail usage_no_nonce "rc != 2"
"$SLUICE" quote --tcti "$T" --nonce zz --out "$TMP/x" >/dev/null 2>&1; [ $? -eq 2 ] && ok usage_bad_nonce || fail usage_bad_nonce "rc != 2"
check_fails no_tpm "$SLUICE" quote --tcti "swtpm:host=127.0.0.1,port=1" --nonce "$N" --out "$TMP/x"

# a hung TPM: the command times out instead of hanging
kill -STOP "$(cat "$TMP/tpm2/swtpm.pid")"
start=$(date +%s.%N)
"$SLUICE" quote --tcti "$U" --timeout 1 --nonce "$N" --out "$TMP/hung" 2>"$TMP/hung.err"; rc=$?
end=$(date +%s.%N)
kill -CONT "$(cat "$TMP/tpm2/swtpm.pid")"
if [ $rc -eq 1 ] && grep -q "did not answer\|no answer" "$TMP/hung.err" && [ "$(echo "$end - $start < 5" | bc)" = 1 ]; then
	ok hung_tpm_times_out
else
	fail hung_tpm_times_out "rc=$rc, $(cat "$TMP/hung.err")"
fi
finish

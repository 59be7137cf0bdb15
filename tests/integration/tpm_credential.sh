#!/usr/bin/env bash
# Software MakeCredential (sluice tpm makecred, no TPM) -> TPM2_ActivateCredential on a real
# swtpm (sluice tpm activate), for the RSA and the ECC EK; tpm2_makecredential's blob
# activates with ours; a blob made for another TPM's EK, for another AK, or tampered with,
# does not activate.
. "$(dirname "$0")/../lib.sh"

command -v tpm2_makecredential >/dev/null || { fail tools "tpm2_makecredential missing"; finish; }
swtpm_up "$TMP/a" || { fail swtpm_up "cannot start swtpm A"; finish; }
A=$SWTPM_TCTI
swtpm_up "$TMP/b" --unix || { fail swtpm_up "cannot start swtpm B"; finish; }
B=$SWTPM_TCTI

head -c 32 /dev/urandom >"$TMP/secret"
"$SLUICE" tpm ak --tcti "$A" --name "$TMP/a.ak.name" >/dev/null || fail ak_a "sluice tpm ak failed"
"$SLUICE" tpm ak --tcti "$B" --name "$TMP/b.ak.name" >/dev/null || fail ak_b "sluice tpm ak failed"

for alg in rsa ecc; do
	"$SLUICE" tpm ek --tcti "$A" --alg $alg --pub "$TMP/a.ek.$alg" >/dev/null || fail "ek_$alg" "sluice tpm ek failed"
	"$SLUICE" tpm ek --tcti "$B" --alg $alg --pub "$TMP/b.ek.$alg" >/dev/null || fail "ek_b_$alg" "sluice tpm ek failed"
	if "$SLUICE" tpm makecred --ek-pub "$TMP/a.ek.$alg" --name "$TMP/a.ak.name" --secret "$TMP/secret" \
		--out "$TMP/cred.$alg"; then
		rm -f "$TMP/out.$alg"
		if "$SLUICE" tpm activate --tcti "$A" --alg $alg --in "$TMP/cred.$alg" --out "$TMP/out.$alg" &&
			cmp -s "$TMP/secret" "$TMP/out.$alg"; then
			ok "roundtrip_$alg"
		else
			fail "roundtrip_$alg" "activate failed or secret differs"
		fi
		check_fails "other_tpm_$alg" "$SLUICE" tpm activate --tcti "$B" --alg $alg --in "$TMP/cred.$alg" --out "$TMP/x.$alg"
	else
		fail "makecred_$alg" "sluice tpm makecred failed"
	fi
	# made for A's EK but B's AK name: A's TPM refuses (the name is bound by the HMAC)
	"$SLUICE" tpm makecred --ek-pub "$TMP/a.ek.$alg" --name "$TMP/b.ak.name" --secret "$TMP/secret" --out "$TMP/cred2.$alg"
	check_fails "other_ak_$alg" "$SLUICE" tpm activate --tcti "$A" --alg $alg --in "$TMP/cred2.$alg" --out "$TMP/y.$alg"
	# one flipped byte of the encrypted credential
	python3 - "$TMP/cred.$alg" "$TMP/cred3.$alg" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[8 + 2 + 2 + 40] ^= 1; open(sys.argv[2], "wb").write(b)
PY
	check_fails "tampered_$alg" "$SLUICE" tpm activate --tcti "$A" --alg $alg --in "$TMP/cred3.$alg" --out "$TMP/z.$alg"
done

# tpm2-tools' MakeCredential (an independent implementation) activates with ours
if tpm2_makecredential -T none -e "$TMP/a.ek.rsa" -s "$TMP/secret" -n "$(xxd -p -c 256 "$TMP/a.ak.name")" \
	-o "$TMP/tcred" >/dev/null 2>&1; then
	rm -f "$TMP/tout"
	if "$SLUICE" tpm activate --tcti "$A" --alg rsa --in "$TMP/tcred" --out "$TMP/tout" && cmp -s "$TMP/secret" "$TMP/tout"; then
		ok tpm2_makecredential_activates
	else
		fail tpm2_makecredential_activates "activate of tpm2_makecredential's blob failed"
	fi
else
	fail tpm2_makecredential_activates "tpm2_makecredential failed"
fi
# a TPM without persistent EKs: the EK is created from the TCG templates (L-1 RSA-2048, L-2
# ECC P-256) for each use and flushed; the publics equal tpm2_createek's; round trips work
swtpm_up "$TMP/c" || { fail swtpm_up "cannot start swtpm C"; finish; }
C=$SWTPM_TCTI
TPM2TOOLS_TCTI=$C tpm2_evictcontrol -C o -c 0x81010001 >/dev/null 2>&1 &&
	TPM2TOOLS_TCTI=$C tpm2_evictcontrol -C o -c 0x81010016 >/dev/null 2>&1 || fail evict_eks "tpm2_evictcontrol failed"
"$SLUICE" tpm ak --tcti "$C" --name "$TMP/c.ak.name" >/dev/null
for alg in rsa ecc; do
	(cd "$TMP" && TPM2TOOLS_TCTI=$C tpm2_createek -c "$TMP/c.ek.$alg.ctx" -G $alg -u "$TMP/c.tek.$alg" >/dev/null 2>&1 &&
		TPM2TOOLS_TCTI=$C tpm2_flushcontext -t >/dev/null 2>&1)
	"$SLUICE" tpm ek --tcti "$C" --alg $alg --pub "$TMP/c.ek.$alg" >/dev/null
	check "ek_template_equals_tpm2_createek_$alg" cmp -s "$TMP/c.tek.$alg" "$TMP/c.ek.$alg"
	rm -f "$TMP/c.out.$alg"
	if "$SLUICE" tpm makecred --ek-pub "$TMP/c.ek.$alg" --name "$TMP/c.ak.name" --secret "$TMP/secret" --out "$TMP/c.cred.$alg" &&
		"$SLUICE" tpm activate --tcti "$C" --alg $alg --in "$TMP/c.cred.$alg" --out "$TMP/c.out.$alg" &&
		cmp -s "$TMP/secret" "$TMP/c.out.$alg"; then
		ok "roundtrip_transient_ek_$alg"
	else
		fail "roundtrip_transient_ek_$alg" "round trip failed"
	fi
done

# nothing transient left behind on either TPM (policy sessions, transient EKs)
for t in "$A" "$B" "$C"; do
	left=$(TPM2TOOLS_TCTI=$t tpm2_getcap handles-transient 2>/dev/null; TPM2TOOLS_TCTI=$t tpm2_getcap handles-loaded-session 2>/dev/null)
	[ -z "$left" ] && ok "no_transient_leftovers_${t%%:*}_${t##*/}" || fail no_transient_leftovers "$t: $left"
done
check_fails makecred_bad_ek "$SLUICE" tpm makecred --ek-pub "$TMP/secret" --name "$TMP/a.ak.name" --secret "$TMP/secret" --out "$TMP/x"
finish

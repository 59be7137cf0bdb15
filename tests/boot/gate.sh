#!/usr/bin/env bash
# QEMU end-to-end (SeaBIOS, TCG): a guest's initramfs runs `sluice boot` as PID 1 against a real
# swtpm, sluice-ts and sluice-verifier on 127.0.0.1, reached only through restrict=on + guestfwd.
#   1 good_root           enrolment, attestation, switch_root; the new root's init finds the
#                         released credential (0400) and re-verifies verdict + receipts offline
#   2 tampered_root       one file changed: refused with rootfs.digest.unknown; `sluice measure
#                         --diff` against the reference manifest names the file
#   3 verifier_down       fail=retry inside a 15 s budget, then halt; nothing released
#   4 ts_down             refused at register, within the budget
#   5 contraindicated     the policy pins PCR 0 to another value: verdict contraindicated
#   7 replay_*            a network attacker replays the good boot's evidence, or its verdict,
#                         to a later boot: refused both ways
#   8 switch_root_fails   the gate opens but the configured init is missing: switch_root fails,
#                         and the released credential and the verdict are wiped before the
#                         failure action (nothing released is left behind)
# (case 6, OVMF + PCR 9, is tests/boot/uefi.sh; the reboot and shell failure actions are
# tests/boot/fail_actions.sh). Each failure prints the guest console.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b (make all)"; finish; }
done
for t in qemu-system-x86_64 swtpm swtpm_setup nc openssl python3 mke2fs cpio; do
	command -v $t >/dev/null || { fail setup "missing $t (make deps)"; finish; }
done
boot_kernel || { fail setup "cannot prepare the guest kernel"; finish; }
W=$TMP/world
boot_world_up "$W" guest-1 || { fail setup "services/enrolment failed"; finish; }
TOKEN=$(cat "$W/release/tool-token")

# ---- the measured root: its init proves what it received ----
cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT-REACHED"
mount -t proc proc /proc 2>/dev/null
dmesg -s 1048576 | grep -q 'sluice: gate open after' && echo "KMSG-OK"
c=/run/credentials/@initrd/tool-token
[ -r $c ] && echo "CRED mode=$(stat -c %a $c) $(cat $c)"
ls /run/sluice | tr '\n' ' ' | sed 's/^/OUT: /'; echo
if /usr/bin/sluice audit /run/sluice/bundle.tar --ts-key /etc/sluice-pins/ts.pem \
	--verifier-key /etc/sluice-pins/verifier.pem --require-affirming >/run/audit.txt 2>&1; then
	echo "AUDIT-OK"
else
	echo "AUDIT-FAILED"; cat /run/audit.txt
fi
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
boot_add_sluice "$TMP/root"
mkdir -p "$TMP/root/etc/sluice-pins"
cp "$W_VKEY" "$TMP/root/etc/sluice-pins/verifier.pem"
cp "$W_TSKEY" "$TMP/root/etc/sluice-pins/ts.pem"
DIGEST=$("$SLUICE" measure --manifest "$TMP/ref.manifest" "$TMP/root" | grep -o 'sha256:[0-9a-f]*' | head -1)
[ -n "$DIGEST" ] || { fail setup "cannot measure the reference root"; finish; }
boot_world_policy "$W" "$DIGEST"
boot_mkroot "$TMP/root" "$TMP/root.img" 128M || { fail setup "mke2fs failed"; finish; }
cp -a "$TMP/root" "$TMP/root2"
echo "tampered" >>"$TMP/root2/etc/motd"
boot_mkroot "$TMP/root2" "$TMP/root2.img" 128M || { fail setup "mke2fs failed"; finish; }

# ---- the attacker in the middle (case 7), in pass-through mode for the other cases ----
PP=$(free_port)
mkdir -p "$TMP/proxy"
python3 "$TOP/tests/boot/replay_proxy.py" "$PP" "$W_VP" "$TMP/proxy" 2>"$TMP/proxy.err" &
track_pid $!
wait_port "$PP" 10 || { fail setup "replay proxy did not start"; finish; }
DEAD=$(free_port) # nothing listens there

boot_guest_conf "$W" "$TMP/sluice.conf" "verifier = http://10.0.2.100:$PP"
boot_initramfs "$TMP/initrd.img" -s "$SLUICE" -c "$TMP/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	{ fail setup "mkinitramfs failed"; finish; }
FWD=(-p "$PP" -p "$W_TSP" -p "$DEAD")
gboot() { boot_qemu "$@" -i "$TMP/initrd.img" -t "$W_TPMSTATE" "${FWD[@]}"; }
refused() { # NAME CASE PATTERN: refused with PATTERN, nothing released, never reached the root
	local n=$1 c=$2 p=$3
	if grep -q ROOT-REACHED "$TMP/$n.console"; then
		fail "$c" "the gate opened"; boot_console "$n"
	elif ! grep -Eq "sluice: FAILED $p" "$TMP/$n.console"; then
		fail "$c" "no failure line matching 'FAILED $p'"; boot_console "$n"
	elif ! grep -Eq 'gate closed after [0-9.]+s: nothing released' "$TMP/$n.console"; then
		fail "$c" "no 'nothing released' line"; boot_console "$n"
	else
		ok "$c"
	fi
}
closed_after() { sed -n 's/.*gate closed after \([0-9.]*\)s.*/\1/p' "$TMP/$1.console" | tail -1; }

# 1. good root (the proxy records the exchange for case 7)
echo record >"$TMP/proxy/mode"
gboot good -r "$TMP/root.img"
con=$TMP/good.console
if grep -q 'sluice: seal ok' "$con" && grep -q "sluice: switch_root /sysroot /sbin/init" "$con" &&
	grep -q "^CRED mode=400 $TOKEN" <(tr -d '\r' <"$con") &&
	grep -q 'OUT: .*bundle.tar.*verdict-receipt.cose.*verdict.cose' "$con"; then
	ok good_root
else
	fail good_root "no switch_root with the released credential and the verdict in /run/sluice"; boot_console good
fi
# the new root re-verifies verdict and receipts offline with `sluice audit`
if grep -q '^AUDIT-OK' <(tr -d '\r' <"$con"); then
	ok good_root_audit
else
	fail good_root_audit "sluice audit in the new root refused /run/sluice/bundle.tar"
	tr -d '\r' <"$con" | sed -n '/AUDIT-FAILED/,$p' | sed 's/^/# /'
fi
# PID 1 copies its console lines to /dev/kmsg, so the booted system's dmesg keeps them
if grep -q '^KMSG-OK' <(tr -d '\r' <"$con"); then
	ok good_root_dmesg
else
	fail good_root_dmesg "the new root's dmesg has no 'sluice: gate open' line"
fi
missing=
for s in measure extend challenge quote statement register appraise release seal; do
	grep -Eq "^sluice: $s ok \([0-9.]+s\)" <(tr -d '\r' <"$con") || missing+=" $s"
done
[ -z "$missing" ] && ok good_root_steps || fail good_root_steps "no console line for:$missing"
echo "# good boot: ${BOOT_SECONDS}s; $(grep -o 'gate open after [0-9.]*s' "$con")"

# 2. one file of the root changed
echo pass >"$TMP/proxy/mode"
gboot tampered -r "$TMP/root2.img"
refused tampered tampered_root "appraise: rootfs.digest.unknown"
if "$SLUICE" measure --diff "$TMP/ref.manifest" "$TMP/root2" 2>&1 | grep -q '^~ /etc/motd'; then
	ok tampered_root_diff_names_file
else
	fail tampered_root_diff_names_file "measure --diff does not name /etc/motd"
fi

# 3. verifier unreachable: retry inside the budget, then halt
gboot verifier_down -r "$TMP/root.img" -a "sluice.verifier=http://10.0.2.100:$DEAD sluice.fail=retry sluice.budget=15 sluice.retry_delay=1"
refused verifier_down verifier_down "challenge: "
t=$(closed_after verifier_down)
if grep -q 'attempt 1 failed: challenge' "$TMP/verifier_down.console" && [ -n "$t" ] &&
	[ "$(echo "$t <= 15 + 5" | bc)" = 1 ]; then
	ok verifier_down_retry_within_budget
else
	fail verifier_down_retry_within_budget "no retry, or closed after ${t:-?}s (budget 15s)"; boot_console verifier_down
fi

# 4. transparency service unreachable
gboot ts_down -r "$TMP/root.img" -a "sluice.ts=http://10.0.2.100:$DEAD sluice.budget=10"
refused ts_down ts_down "register: "
t=$(closed_after ts_down)
[ -n "$t" ] && [ "$(echo "$t <= 10 + 5" | bc)" = 1 ] && ok ts_down_within_budget ||
	fail ts_down_within_budget "closed after ${t:-?}s (budget 10s)"

# 5. the verifier says contraindicated (PCR 0 pinned to a value this machine does not have)
boot_world_policy "$W" "$DIGEST" "[0, 15]" "\"pcr_values\": {\"0\": [\"$(printf '%064d' 0)\"]}"
gboot contra -r "$TMP/root.img"
refused contra contraindicated "appraise: pcr.value.unknown"
boot_world_policy "$W" "$DIGEST"

# 7. replay: the good boot's evidence, then its verdict, presented to a later boot
if [ -s "$TMP/proxy/attest.req" ] && [ -s "$TMP/proxy/attest.resp" ]; then
	echo replay-evidence >"$TMP/proxy/mode"
	gboot replay_ev -r "$TMP/root.img" -a "sluice.budget=20"
	refused replay_ev replay_evidence "appraise: "
	echo replay-verdict >"$TMP/proxy/mode"
	gboot replay_verdict -r "$TMP/root.img" -a "sluice.budget=20"
	refused replay_verdict replay_verdict "appraise: "
	grep -q 'replay-verdict' "$TMP/proxy/log" || fail replay_verdict "the proxy never replayed"
else
	fail replay_evidence "the good boot's exchange was not recorded"
fi

# 8. the gate opens, then switch_root fails (no such init in the new root)
echo pass >"$TMP/proxy/mode"
boot_guest_conf "$W" "$TMP/sluice-noinit.conf" "verifier = http://10.0.2.100:$PP" "init = /sbin/no-such-init"
if boot_initramfs "$TMP/initrd-noinit.img" -s "$SLUICE" -c "$TMP/sluice-noinit.conf" -V "$W_VKEY" -T "$W_TSKEY"; then
	boot_qemu noinit -i "$TMP/initrd-noinit.img" -t "$W_TPMSTATE" "${FWD[@]}" -r "$TMP/root.img"
	con=$TMP/noinit.console
	if grep -q 'gate open after' "$con" && grep -q 'sluice: FAILED switch_root: ' "$con" &&
		grep -Eq 'sluice: wiped [1-9][0-9]* released credential\(s\) from /run/credentials/@initrd' "$con" &&
		! grep -q ROOT-REACHED "$con"; then
		ok switch_root_fails_wipes_release
	else
		fail switch_root_fails_wipes_release "no failed switch_root followed by the wipe"; boot_console noinit
	fi
else
	fail switch_root_fails_wipes_release "mkinitramfs failed"
fi
finish

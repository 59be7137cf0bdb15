#!/usr/bin/env bash
# QEMU end-to-end (SeaBIOS, TCG): the PID 1 mode's `reboot` and `shell` failure actions, booted
# (gate.sh covers halt and retry; dracut_boot.sh the hook mode's shell). The guest boots the
# tampered root of gate.sh (one file of the measured root changed), so the gate refuses it at
# appraise and the failure action runs.
#   fail_reboot               sluice.fail=reboot: the console names the failed step and the
#                             reboot, the kernel restarts the machine and the gate runs again in
#                             a second boot (QEMU allowed to reboot; the boots are counted); the
#                             root's init never runs, nothing released
#   fail_shell                allow_shell = yes in sluice.conf and sluice.fail=shell: a shell on
#                             the serial console, driven through it: it runs inside the
#                             initramfs (PID 1 is sluice), finds no released credential and no
#                             verdict, and powers the machine off
#   fail_shell_after_release  the same shell after the gate opened on the good root and
#                             switch_root failed (no such init): the released credential and
#                             the verdict were wiped before the shell started
#   fail_shell_not_allowed    sluice.fail=shell on the kernel command line without allow_shell:
#                             no shell; the console says why and the machine halts
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b (make all)"; finish; }
done
for t in qemu-system-x86_64 swtpm swtpm_setup nc openssl mke2fs cpio mkfifo; do
	command -v $t >/dev/null || { fail setup "missing $t (make deps)"; finish; }
done
boot_kernel || { fail setup "cannot prepare the guest kernel"; finish; }
W=$TMP/world
boot_world_up "$W" guest-fa || { fail setup "services/enrolment failed"; finish; }

# the measured root (its init says it was reached) and the tampered copy the guests boot
cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT-REACHED"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
DIGEST=$("$SLUICE" measure "$TMP/root" | grep -o 'sha256:[0-9a-f]*' | head -1)
[ -n "$DIGEST" ] || { fail setup "cannot measure the reference root"; finish; }
boot_world_policy "$W" "$DIGEST"
boot_mkroot "$TMP/root" "$TMP/root.img" || { fail setup "mke2fs failed"; finish; }
echo "tampered" >>"$TMP/root/etc/motd"
boot_mkroot "$TMP/root" "$TMP/root2.img" || { fail setup "mke2fs failed"; finish; }

boot_guest_conf "$W" "$TMP/sluice.conf" "budget = 20"
boot_initramfs "$TMP/initrd.img" -s "$SLUICE" -c "$TMP/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	{ fail setup "mkinitramfs failed"; finish; }
boot_guest_conf "$W" "$TMP/sluice-shell.conf" "budget = 20" "allow_shell = yes"
boot_initramfs "$TMP/initrd-shell.img" -s "$SLUICE" -c "$TMP/sluice-shell.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	{ fail setup "mkinitramfs (allow_shell) failed"; finish; }
boot_guest_conf "$W" "$TMP/sluice-noinit.conf" "budget = 20" "allow_shell = yes" "init = /sbin/no-such-init"
boot_initramfs "$TMP/initrd-noinit.img" -s "$SLUICE" -c "$TMP/sluice-noinit.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	{ fail setup "mkinitramfs (allow_shell, no init) failed"; finish; }
FWD=(-p "$W_VP" -p "$W_TSP")
con() { tr -d '\r' <"$TMP/$1.console"; }
GATE_LINE='^sluice: gate: verifier '

# refused_once NAME CASE ACTION: the first boot refused at appraise and says ACTION is next;
# the root's init never ran
refused_once() {
	local n=$1 c=$2 act=$3
	if con "$n" | grep -q ROOT-REACHED; then
		fail "$c" "the root's init ran"; boot_console "$n"; return 1
	elif ! con "$n" | grep -q '^sluice: FAILED appraise: rootfs.digest.unknown'; then
		fail "$c" "no 'FAILED appraise: rootfs.digest.unknown' line"; boot_console "$n"; return 1
	elif ! con "$n" | grep -Eq "^sluice: gate closed after [0-9.]+s: nothing released; failure action: $act\$"; then
		fail "$c" "no 'nothing released; failure action: $act' line"; boot_console "$n"; return 1
	fi
	return 0
}

# 1. fail=reboot: QEMU may reboot the guest; stop once the gate has started in a second boot
boot_qemu fail_reboot -i "$TMP/initrd.img" -t "$W_TPMSTATE" "${FWD[@]}" -r "$TMP/root2.img" -w 120 \
	-a "sluice.fail=reboot" -R -e "$GATE_LINE" -n 2
boots=$(con fail_reboot | grep -c "$GATE_LINE")
if refused_once fail_reboot fail_reboot reboot; then
	# the kernel's own line for a restart (a power-off says "reboot: Power down" instead), then
	# the gate's first line again: the machine came back up through the firmware
	if ! con fail_reboot | grep -q '^\(\[ *[0-9.]*\] \)\?reboot: Restarting system'; then
		fail fail_reboot "the kernel did not restart the machine"; boot_console fail_reboot
	elif con fail_reboot | grep -q 'reboot: Power down'; then
		fail fail_reboot "the machine powered off instead of rebooting"; boot_console fail_reboot
	elif [ "$boots" -lt 2 ]; then
		fail fail_reboot "no second boot ($boots gate start(s) on the console)"; boot_console fail_reboot
	else
		ok fail_reboot
	fi
fi

# 2. fail=shell, allowed by the initramfs' sluice.conf: drive the shell through the serial
# console. The expected lines are computed by the shell ($((...)), $(...)), so the terminal's
# echo of the typed command never matches them.
cat >"$TMP/shell.in" <<'EOF'
echo "PID1=$(cat /proc/1/comm) INIT=$([ -x /init ] && echo initramfs)"
echo "CREDDIR=$(cd /run/credentials/@initrd && echo there) CREDS=$(ls -A /run/credentials/@initrd | wc -l) VERDICT=$(ls /run/sluice/verdict.cose 2>/dev/null | wc -l)"
echo "SHELL-ALIVE-$((6 * 7))"
poweroff -f
EOF
boot_qemu fail_shell -i "$TMP/initrd-shell.img" -t "$W_TPMSTATE" "${FWD[@]}" -r "$TMP/root2.img" -w 120 \
	-a "sluice.fail=shell" -x '^sluice: starting a shell' -X "$TMP/shell.in"
rc=$?
if refused_once fail_shell fail_shell shell; then
	if ! con fail_shell | grep -q '^sluice: starting a shell (fail = shell)'; then
		fail fail_shell "no 'starting a shell' line"; boot_console fail_shell
	elif ! con fail_shell | grep -q '^SHELL-ALIVE-42$'; then
		fail fail_shell "the shell did not run the typed commands"; boot_console fail_shell
	elif ! con fail_shell | grep -q '^PID1=sluice INIT=initramfs$'; then
		fail fail_shell "the shell is not in the initramfs under sluice as PID 1"; boot_console fail_shell
	elif ! con fail_shell | grep -q '^CREDDIR=there CREDS=0 VERDICT=0$'; then
		fail fail_shell "a credential or the verdict was left for the shell"; boot_console fail_shell
	elif [ "$rc" -ne 0 ]; then
		fail fail_shell "QEMU did not end with the shell's poweroff (status $rc)"; boot_console fail_shell
	else
		ok fail_shell
	fi
fi

# 3. the shell after a release: the good root opens the gate, switch_root fails (no such init);
# the released credential and the verdict are wiped before the shell starts
boot_qemu fail_shell_rel -i "$TMP/initrd-noinit.img" -t "$W_TPMSTATE" "${FWD[@]}" -r "$TMP/root.img" -w 120 \
	-a "sluice.fail=shell" -x '^sluice: starting a shell' -X "$TMP/shell.in"
c=fail_shell_after_release
if ! con fail_shell_rel | grep -q '^sluice: release ok' ||
	! con fail_shell_rel | grep -q '^sluice: FAILED switch_root: /sbin/no-such-init'; then
	fail $c "no release followed by a failed switch_root"; boot_console fail_shell_rel
elif ! con fail_shell_rel | grep -Eq '^sluice: wiped [1-9][0-9]* released credential'; then
	fail $c "no wipe line"; boot_console fail_shell_rel
elif ! con fail_shell_rel | grep -q '^SHELL-ALIVE-42$'; then
	fail $c "no shell ran the typed commands"; boot_console fail_shell_rel
elif ! con fail_shell_rel | grep -q '^CREDDIR=there CREDS=0 VERDICT=0$'; then
	fail $c "the shell found a released credential or the verdict"; boot_console fail_shell_rel
else
	ok $c
fi

# 4. fail=shell on the kernel command line, the file does not allow it: no shell, halt
boot_qemu fail_shell_na -i "$TMP/initrd.img" -t "$W_TPMSTATE" "${FWD[@]}" -r "$TMP/root2.img" -w 90 \
	-a "sluice.fail=shell"
rc=$?
c=fail_shell_not_allowed
if con fail_shell_na | grep -q ROOT-REACHED; then
	fail $c "the root's init ran"; boot_console fail_shell_na
elif ! con fail_shell_na | grep -q "^sluice: FAILED config: kernel command line: fail: 'shell' on the kernel command line needs allow_shell = yes"; then
	fail $c "the console does not say that the shell needs allow_shell"; boot_console fail_shell_na
elif ! con fail_shell_na | grep -Eq '^sluice: gate closed after [0-9.]+s: nothing released; failure action: halt$'; then
	fail $c "no 'failure action: halt' line"; boot_console fail_shell_na
elif con fail_shell_na | grep -q 'starting a shell'; then
	fail $c "a shell started"; boot_console fail_shell_na
elif ! con fail_shell_na | grep -q 'reboot: Power down'; then
	fail $c "the machine did not power off (QEMU status $rc)"; boot_console fail_shell_na
else
	ok $c
fi
finish

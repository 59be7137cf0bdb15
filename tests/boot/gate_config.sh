#!/usr/bin/env bash
# sluice boot as PID 1 fails closed on configuration it must not accept: a kernel command line
# that tries to replace a pinned key. One QEMU boot (SeaBIOS, no network, no services): the
# console names the offending key, the gate stays closed, the root's init never runs, and the
# machine powers itself off (QEMU exits before the timeout).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

[ -x "$SLUICE" ] || { fail setup "$SLUICE not built"; finish; }
boot_kernel || { fail setup "cannot prepare the guest kernel"; finish; }

cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT-REACHED"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
boot_mkroot "$TMP/root" "$TMP/root.img" 16M
printf 'verifier = http://10.0.2.100:9\nts = http://10.0.2.100:10\nhost_id = guest\nfail = halt\nip = off\n' >"$TMP/sluice.conf"
boot_initramfs "$TMP/initrd.img" -s "$SLUICE" -c "$TMP/sluice.conf" || { fail setup "mkinitramfs failed"; finish; }

boot_qemu pinned -i "$TMP/initrd.img" -r "$TMP/root.img" -a "sluice.verifier_key=/etc/motd" -w 180
rc=$?
con=$TMP/pinned.console
if [ $rc -eq 124 ]; then
	fail cmdline_cannot_replace_pinned_key "timed out: the machine did not power off"; boot_console pinned
elif grep -q ROOT-REACHED "$con"; then
	fail cmdline_cannot_replace_pinned_key "switched to the root"; boot_console pinned
elif ! grep -q 'sluice: FAILED config: kernel command line: verifier_key: may only be set in' "$con" ||
	! grep -Eq 'gate closed after [0-9.]+s: nothing released; failure action: halt' "$con"; then
	fail cmdline_cannot_replace_pinned_key "no failure line naming verifier_key"; boot_console pinned
else
	ok cmdline_cannot_replace_pinned_key
fi
echo "# boot took ${BOOT_SECONDS}s"
finish

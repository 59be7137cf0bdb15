#!/usr/bin/env bash
# QEMU end-to-end under OVMF (case 6): the firmware's real TCG event log travels in the evidence,
# the verifier replays it onto the quoted PCRs 9 and 15, and the policy pins the PCR 9 events:
# the initrd digest (SHA-256 of the initrd file, measured by the kernel's EFI stub) and the
# kernel command line (UTF-16LE with NUL, as OVMF measures LoadOptions). The good initrd boots;
# an initramfs with one added file is refused naming the unknown PCR 9 event.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b (make all)"; finish; }
done
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { fail setup "OVMF missing (apt-get install ovmf)"; finish; }
boot_kernel || { fail setup "cannot prepare the guest kernel"; finish; }
W=$TMP/world
boot_world_up "$W" guest-uefi || { fail setup "services/enrolment failed"; finish; }

cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT-REACHED"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
DIGEST=$("$SLUICE" measure "$TMP/root" | grep -o 'sha256:[0-9a-f]*' | head -1)
boot_mkroot "$TMP/root" "$TMP/root.img" 16M
boot_guest_conf "$W" "$TMP/sluice.conf"
boot_initramfs "$TMP/good.img" -s "$SLUICE" -c "$TMP/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	{ fail setup "mkinitramfs failed"; finish; }
echo "an extra file" >"$TMP/extra"
boot_initramfs "$TMP/bad.img" -s "$SLUICE" -c "$TMP/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" -a "$TMP/extra:/etc/extra" ||
	{ fail setup "mkinitramfs failed"; finish; }

APPEND="sluice.pcr=15"
INITRD_EV=$(sha256sum "$TMP/good.img" | cut -d' ' -f1)
CMDLINE_EV=$(python3 -c 'import hashlib,sys; print(hashlib.sha256((sys.argv[1] + " initrd=initrd\0").encode("utf-16-le")).hexdigest())' \
	"console=ttyS0 panic=-1 quiet $APPEND")
boot_world_policy "$W" "$DIGEST" "[9, 15]" "\"events\": [\"sha256:$INITRD_EV\", \"sha256:$CMDLINE_EV\"]"

boot_qemu uefi_good -u -i "$TMP/good.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -a "$APPEND" -w 400
if grep -q ROOT-REACHED "$TMP/uefi_good.console" && grep -q 'sluice: appraise ok' "$TMP/uefi_good.console"; then
	ok uefi_good_initrd
else
	fail uefi_good_initrd "the pinned initrd did not boot"; boot_console uefi_good
fi
echo "# OVMF good boot: ${BOOT_SECONDS}s"

boot_qemu uefi_bad -u -i "$TMP/bad.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -a "$APPEND" -w 400
con=$TMP/uefi_bad.console
if grep -q ROOT-REACHED "$con"; then
	fail uefi_modified_initrd_refused "the modified initrd booted"; boot_console uefi_bad
elif ! grep -Eq 'sluice: FAILED appraise: event.unknown' "$con" || ! grep -q 'nothing released' "$con"; then
	fail uefi_modified_initrd_refused "no failure line naming the unknown event"; boot_console uefi_bad
else
	ok uefi_modified_initrd_refused
fi
finish

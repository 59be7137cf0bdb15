#!/usr/bin/env bash
# `sluice boot --hook` on the host (no QEMU): the gate as dracut / initramfs-tools / systemd run
# it, against a real swtpm, sluice-ts and sluice-verifier on loopback. The "root" is a tmpfs
# mounted in a private mount namespace.
#   hook_opens         exit 0; credential 0400 in cred_dir; verdict, receipts, bundle in out_dir;
#                      every step line printed
#   hook_sealed        the "released" event is in the sluice event log, and a second attestation
#                      without a TPM reset is refused by the verifier (slog.sealed): the PCR
#                      state the verdict was given for cannot be presented again
#   hook_tampered      a changed file: exit 1, one FAILED line naming rootfs.digest.unknown, no
#                      credential left behind
#   hook_bad_cmdline   an unknown sluice.* key on the command line: exit 1 before any network
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b (make all)"; finish; }
done
command -v unshare >/dev/null || { fail setup "unshare missing"; finish; }
W=$TMP/world
boot_world_up "$W" hook-host || { fail setup "services/enrolment failed"; finish; }
swtpm_up "$W/tpm" >/dev/null || { fail setup "swtpm"; finish; }

mkdir -p "$TMP/tree/etc" "$TMP/tree/usr/bin"
echo "hello" >"$TMP/tree/etc/motd"
printf '#!/bin/sh\necho app\n' >"$TMP/tree/usr/bin/app"
chmod 755 "$TMP/tree/usr/bin/app"
DIGEST=$("$SLUICE" measure "$TMP/tree" | grep -o 'sha256:[0-9a-f]*' | head -1)
boot_world_policy "$W" "$DIGEST"
cat >"$TMP/sluice.conf" <<EOF
verifier = http://127.0.0.1:$W_VP
ts = http://127.0.0.1:$W_TSP
host_id = $W_HOST
verifier_key = $W_VKEY
ts_key = $W_TSKEY
tcti = $SWTPM_TCTI
sysroot = $TMP/sysroot
out_dir = $TMP/run/sluice
cred_dir = $TMP/run/credentials/@initrd
eventlog = /nonexistent-firmware-log
budget = 30
EOF
: >"$TMP/cmdline"

# run_hook TREE [cmdline]: sluice boot --hook with TREE on a fresh tmpfs at sysroot
run_hook() {
	printf '%s\n' "${2:-}" >"$TMP/cmdline"
	unshare -m --propagation private bash -c '
		mkdir -p "$3" && mount -t tmpfs -o mode=0755 sysroot "$3" && cp -a "$2"/. "$3"/ &&
		exec "$1" boot --hook --no-action --config "$4" --cmdline "$5"' sh \
		"$SLUICE" "$1" "$TMP/sysroot" "$TMP/sluice.conf" "$TMP/cmdline"
}

run_hook "$TMP/tree" >"$TMP/good.out" 2>&1
rc=$?
cred=$TMP/run/credentials/@initrd/tool-token
if [ $rc -eq 0 ] && [ "$(stat -c %a "$cred" 2>/dev/null)" = 400 ] && cmp -s "$cred" "$W/release/tool-token" &&
	[ -s "$TMP/run/sluice/bundle.tar" ] && [ -s "$TMP/run/sluice/verdict-receipt.cose" ] &&
	grep -q 'gate open after' "$TMP/good.out"; then
	ok hook_opens
else
	fail hook_opens "rc=$rc"; sed 's/^/# /' "$TMP/good.out"
fi
n=0
for s in mount measure extend challenge quote statement register appraise release seal; do
	grep -Eq "^sluice: $s ok \([0-9.]+s\)" "$TMP/good.out" && n=$((n + 1))
done
[ $n -eq 10 ] && ok hook_step_lines || fail hook_step_lines "$n of 10 step lines"
if "$SLUICE" audit "$TMP/run/sluice/bundle.tar" --ts-key "$W_TSKEY" --verifier-key "$W_VKEY" >"$TMP/audit.out" 2>&1; then
	ok hook_bundle_audits
else
	fail hook_bundle_audits "sluice audit refused the bundle"; sed 's/^/# /' "$TMP/audit.out"
fi

# the seal: a second attestation from the same (not reset) TPM must be refused
run_hook "$TMP/tree" >"$TMP/again.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q 'FAILED appraise: slog.sealed' "$TMP/again.out" && [ ! -e "$cred" ]; then
	ok hook_sealed
else
	fail hook_sealed "rc=$rc"; sed 's/^/# /' "$TMP/again.out"
fi

# a changed file, after a TPM reset (fresh PCRs, fresh event log)
swtpm_down "$W/tpm"; swtpm_up "$W/tpm" >/dev/null || { fail setup "swtpm restart"; finish; }
sed -i "s|^tcti = .*|tcti = $SWTPM_TCTI|" "$TMP/sluice.conf"
rm -rf "$TMP/run"
cp -a "$TMP/tree" "$TMP/tree2"
echo "changed" >>"$TMP/tree2/etc/motd"
run_hook "$TMP/tree2" >"$TMP/bad.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c 'sluice: FAILED' "$TMP/bad.out")" = 1 ] &&
	grep -q 'sluice: FAILED appraise: rootfs.digest.unknown' "$TMP/bad.out" &&
	[ -z "$(ls -A "$TMP/run/credentials/@initrd" 2>/dev/null)" ]; then
	ok hook_tampered
else
	fail hook_tampered "rc=$rc"; sed 's/^/# /' "$TMP/bad.out"
fi

run_hook "$TMP/tree" "quiet sluice.verifer=http://x" >"$TMP/typo.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "FAILED config: kernel command line: unknown key 'verifer'" "$TMP/typo.out" &&
	! grep -q 'measure ok' "$TMP/typo.out"; then
	ok hook_bad_cmdline
else
	fail hook_bad_cmdline "rc=$rc"; sed 's/^/# /' "$TMP/typo.out"
fi
finish

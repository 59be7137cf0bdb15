#!/usr/bin/env bash
# libquote's own device TCTI inside a QEMU guest (SeaBIOS, TCG) with a swtpm behind tpm-tis:
# sluice tpm info / quote / quote verify (with the guest's firmware event log replayed onto
# the quote) / tpm extend over /dev/tpmrm0 and /dev/tpm0; a wrong nonce is rejected in the
# guest too. About 10 s. Kernel: $BUILD/kernel/root if unpacked there (tests/boot do that),
# else apt-get download + dpkg -x into $BUILD/eventlog-capture/kernel.
. "$(dirname "$0")/../lib.sh"
for t in qemu-system-x86_64 busybox cpio swtpm; do
	command -v $t >/dev/null || { fail tools "$t missing"; finish; }
done
if [ -e "$BUILD/kernel/root/.done" ]; then
	kroot=$BUILD/kernel/root
else
	kroot=$BUILD/eventlog-capture/kernel
	if [ ! -e "$kroot/.done" ]; then
		mkdir -p "$BUILD/eventlog-capture"
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends:/{print $2; exit}')
		(cd "$BUILD/eventlog-capture" && apt-get download "$pkg" >/dev/null 2>&1) || { fail kernel "apt-get download $pkg failed"; finish; }
		rm -rf "$kroot"; dpkg -x "$BUILD/eventlog-capture/${pkg}"_*.deb "$kroot" && touch "$kroot/.done"
	fi
fi
kver=$(ls "$kroot/lib/modules" | head -1)
vmlinuz=$kroot/boot/vmlinuz-$kver

ird=$TMP/ird
mkdir -p "$ird"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$ird/bin/"
for a in sh mount cat echo poweroff; do ln -s busybox "$ird/bin/$a"; done
# a private copy (the shared build may be re-linked meanwhile), retried until it is whole
for i in 1 2 3 4 5 6; do
	cp "$SLUICE" "$TMP/sluice" 2>/dev/null && ldd "$TMP/sluice" >/dev/null 2>&1 && break
	sleep 2
done
ldd "$TMP/sluice" >/dev/null 2>&1 || { fail sluice_binary "$SLUICE is not a usable dynamic executable"; finish; }
cp "$TMP/sluice" "$ird/bin/sluice"
for l in $(ldd "$TMP/sluice" | awk '/=>/{print $3} /ld-linux/{print $1}'); do
	mkdir -p "$ird$(dirname "$l")"; cp -L "$l" "$ird$l"
done
cat >"$ird/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
echo; echo "==START=="
r() { n=$1; shift; "$@" >/tmp/out 2>&1; rc=$?; echo "==$n rc=$rc"; cat /tmp/out; }
r info sluice tpm info --tcti device:/dev/tpmrm0
r quote sluice quote --tcti device:/dev/tpmrm0 --nonce 00112233 --pcrs sha1:0-7+sha256:0-7 --out /tmp/q --repeat 10
r verify sluice quote verify --in /tmp/q --nonce 00112233 --eventlog /sys/kernel/security/tpm0/binary_bios_measurements
r badnonce sluice quote verify --in /tmp/q --nonce 00112234
r extend sluice tpm extend --tcti device:/dev/tpm0 --pcr 15 --text hello --slog /tmp/s.slog
echo "==DONE=="
poweroff -f
INIT
chmod 755 "$ird/init"
(cd "$ird" && find . -print0 | cpio --null -o -H newc 2>/dev/null | gzip -1) >"$TMP/initrd.gz"
"$TOP/swtpm/setup.sh" "$TMP/tpm" --no-certs >/dev/null
sock=$("$TOP/swtpm/start.sh" "$TMP/tpm" --qemu) || { fail swtpm "cannot start swtpm"; finish; }
on_exit "'$TOP/swtpm/stop.sh' '$TMP/tpm'"
timeout 180 qemu-system-x86_64 -accel tcg -m 512 -smp 1 -machine q35 -nic none -nographic -no-reboot \
	-kernel "$vmlinuz" -initrd "$TMP/initrd.gz" -append 'console=ttyS0 panic=-1 quiet' \
	-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
	</dev/null >"$TMP/console" 2>&1
tr -d '\r' <"$TMP/console" >"$TMP/c"
grep -q '^==DONE==' "$TMP/c" || { fail guest "guest did not finish"; sed 's/^/# /' "$TMP/c" | tail -30; finish; }
exp() { # NAME PATTERN
	if grep -qE "$2" "$TMP/c"; then ok "$1"; else fail "$1" "no /$2/ on the console"; fi
}
exp device_tpm_info '^==info rc=0'
exp device_quote_rc '^==quote rc=0'
exp device_verify_rc '^==verify rc=0'
exp device_wrong_nonce_rc '^==badnonce rc=1'
exp device_quote_latency '^quotes 10 median_ms'
exp device_verify_with_firmware_log '^event logs replay to the quoted PCRs'
exp device_wrong_nonce_rejected '^sluice: quote rejected: nonce mismatch'
exp device_extend_tpm0 '^extended PCR 15, record 0'
grep -E '^quotes ' "$TMP/c" | sed 's/^/# guest: /'
finish

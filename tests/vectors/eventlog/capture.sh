#!/usr/bin/env bash
# tests/vectors/eventlog/capture.sh [seabios|ovmf]...
#
# One-off capture of real TCG event logs for the vectors in this directory: boot QEMU (TCG)
# with a fresh swtpm under SeaBIOS and under OVMF, with a Debian kernel and a tiny busybox
# initramfs whose /init prints the firmware event log (base64) and the PCR values from
# sysfs to the serial console, then powers off. Writes, per firmware F:
#   F.bin         /sys/kernel/security/tpm0/binary_bios_measurements
#   F.pcrs        "sha1:N HEX" / "sha256:N HEX" lines read from /sys/class/tpm/tpm0/pcr-*/N
#   F.eventlog.txt  tpm2_eventlog's view of F.bin (for reference)
# The kernel comes from `apt-get download` of linux-image-amd64's dependency, unpacked with
# dpkg -x under $BUILD/eventlog-capture (or reused from $BUILD/kernel/root). Needs
# qemu-system-x86, ovmf, swtpm, busybox-static, cpio. Not part of make check.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
BUILD=${BUILD:-$top/build}
case "$BUILD" in /*) ;; *) BUILD=$top/$BUILD ;; esac
work=$BUILD/eventlog-capture
mkdir -p "$work"
fws=("$@")
[ ${#fws[@]} -gt 0 ] || fws=(seabios ovmf)

# kernel
if [ -e "$BUILD/kernel/root/.done" ]; then
	kroot=$BUILD/kernel/root
else
	kroot=$work/kernel
	if [ ! -e "$kroot/.done" ]; then
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends:/{print $2; exit}')
		(cd "$work" && apt-get download "$pkg")
		rm -rf "$kroot"
		dpkg -x "$work/${pkg}"_*.deb "$kroot"
		touch "$kroot/.done"
	fi
fi
kver=$(ls "$kroot/lib/modules" | head -1)
vmlinuz=$kroot/boot/vmlinuz-$kver

# initramfs: busybox + /init
ird=$work/initramfs
rm -rf "$ird"
mkdir -p "$ird"/{bin,proc,sys,dev}
cp /bin/busybox "$ird/bin/busybox"
for a in sh mount cat base64 echo poweroff ls sleep; do ln -s busybox "$ird/bin/$a"; done
cat >"$ird/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t devtmpfs devtmpfs /dev
log=/sys/kernel/security/tpm0/binary_bios_measurements
i=0
while [ ! -e $log ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "==LOG-BEGIN=="
base64 $log
echo "==LOG-END=="
echo "==PCRS-BEGIN=="
for bank in sha1 sha256; do
	for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23; do
		f=/sys/class/tpm/tpm0/pcr-$bank/$n
		[ -e $f ] && echo "$bank:$n $(cat $f)"
	done
done
echo "==PCRS-END=="
poweroff -f
INIT
chmod 755 "$ird/init"
(cd "$ird" && find . -print0 | cpio --null -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"

for fw in "${fws[@]}"; do
	tpm=$work/tpm-$fw
	rm -rf "$tpm"
	"$top/swtpm/setup.sh" "$tpm" --no-certs >/dev/null
	sock=$("$top/swtpm/start.sh" "$tpm" --qemu)
	extra=()
	if [ "$fw" = ovmf ]; then
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
		extra=(-drive if=pflash,format=raw,unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.fd,readonly=on
			-drive if=pflash,format=raw,unit=1,file="$work/vars.fd")
	fi
	echo "capture: booting $fw" >&2
	timeout 300 qemu-system-x86_64 -accel tcg -m 512 -smp 1 -machine q35 -nic none -nographic -no-reboot \
		-kernel "$vmlinuz" -initrd "$work/initrd.gz" -append 'console=ttyS0 panic=-1 quiet' \
		-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
		"${extra[@]}" </dev/null >"$work/$fw.console" 2>&1 || true
	"$top/swtpm/stop.sh" "$tpm" >/dev/null 2>&1 || true
	tr -d '\r' <"$work/$fw.console" | sed -n '/==LOG-BEGIN==/,/==LOG-END==/p' | sed '1d;$d' | base64 -d >"$here/$fw.bin"
	tr -d '\r' <"$work/$fw.console" | sed -n '/==PCRS-BEGIN==/,/==PCRS-END==/p' | sed '1d;$d' >"$here/$fw.pcrs"
	if [ ! -s "$here/$fw.bin" ] || [ ! -s "$here/$fw.pcrs" ]; then
		echo "capture: $fw: no log or PCRs on the console (see $work/$fw.console)" >&2
		exit 1
	fi
	tpm2_eventlog "$here/$fw.bin" >"$here/$fw.eventlog.txt" 2>&1 || true
	echo "capture: $fw: $(stat -c %s "$here/$fw.bin") bytes of event log, $(wc -l <"$here/$fw.pcrs") PCR values" >&2
done

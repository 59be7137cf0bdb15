#!/usr/bin/env bash
# bench/boot.sh: what the sluice gate adds to a boot. The same QEMU boot (SeaBIOS, TCG, same
# kernel, same 64 MiB ext4 root, same swtpm) with the plain busybox initramfs (mount + switch_root)
# and with the sluice initramfs (measure, quote, register, appraise, release, seal, switch_root
# against sluice-ts and sluice-verifier on loopback), alternating, BOOT_RUNS runs each (default 5:
# a plain boot varies by +-0.5 s here). Prints the mean wall time of each, the added seconds, the
# ratio, the same from the guest's clock (uptime when the root's init runs: no QEMU start-up,
# firmware or power-off in it, so less noise), and sluice's own per-step timings (from its
# console lines). Target: <= 1.5 s added for a 64 MiB root under TCG.
set -u
. "$(dirname "$0")/../tests/lib.sh"
. "$TOP/tests/boot/lib-boot.sh"
RUNS=${BOOT_RUNS:-5}
FILL_MB=${BOOT_FILL_MB:-40}
die() { echo "bench/boot: $*" >&2; exit 1; }
for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do [ -x "$b" ] || die "missing $b (make all)"; done
boot_kernel || die "cannot prepare the guest kernel"

W=$TMP/world
boot_world_up "$W" bench-host || die "services/enrolment failed"
cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
# (the plain initramfs does not move /proc into the root)
[ -r /proc/uptime ] || mount -t proc proc /proc
read -r up idle </proc/uptime
echo "ROOT-REACHED uptime $up"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
# payload: FILL_MB MiB in 1 MiB and 64 KiB files, like binaries and libraries
mkdir -p "$TMP/root/usr/lib/payload"
head -c $((FILL_MB * 1024 * 1024)) /dev/urandom >"$TMP/fill"
split -b 1M -a 3 "$TMP/fill" "$TMP/root/usr/lib/payload/big."
mkdir -p "$TMP/root/usr/share/payload"
head -c $((4 * 1024 * 1024)) /dev/urandom | split -b 64K -a 3 - "$TMP/root/usr/share/payload/small."
rm -f "$TMP/fill"
DIGEST=$("$SLUICE" measure "$TMP/root" | grep -o 'sha256:[0-9a-f]*' | head -1)
boot_world_policy "$W" "$DIGEST"
boot_mkroot "$TMP/root" "$TMP/root.img" 64M
files=$(find "$TMP/root" -type f | wc -l)
boot_guest_conf "$W" "$TMP/sluice.conf"
boot_initramfs "$TMP/plain.img" || die "mkinitramfs (plain) failed"
boot_initramfs "$TMP/sluice.img" -s "$SLUICE" -c "$TMP/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" || die "mkinitramfs failed"

echo "boot bench: $RUNS runs each, SeaBIOS, TCG (no KVM), -smp ${BOOT_SMP:-2}; 64 MiB ext4 root, $files files, $((FILL_MB + 4)) MiB of content"
echo "initramfs: plain $(($(stat -c %s "$TMP/plain.img") / 1024)) KiB, with sluice $(($(stat -c %s "$TMP/sluice.img") / 1024)) KiB"
plain=() gated=() uplain=() ugated=()
uptime_of() { tr -d '\r' <"$TMP/$1.console" | sed -n 's/^ROOT-REACHED uptime \([0-9.]*\).*/\1/p' | head -1; }
for i in $(seq "$RUNS"); do
	# the plain boot gets the same NIC and TPM, so the only difference is the initramfs
	boot_qemu "plain$i" -i "$TMP/plain.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -w 300
	grep -q ROOT-REACHED "$TMP/plain$i.console" || { boot_console "plain$i"; die "plain boot $i failed"; }
	plain+=("$BOOT_SECONDS") uplain+=("$(uptime_of "plain$i")")
	boot_qemu "gated$i" -i "$TMP/sluice.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -w 300
	grep -q ROOT-REACHED "$TMP/gated$i.console" || { boot_console "gated$i"; die "sluice boot $i failed"; }
	gated+=("$BOOT_SECONDS") ugated+=("$(uptime_of "gated$i")")
	printf '  run %d: plain %.2fs, with sluice %.2fs (guest clock at the root: %.2fs, %.2fs)\n' "$i" "${plain[-1]}" \
		"${gated[-1]}" "${uplain[-1]}" "${ugated[-1]}"
done
mean() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.2f", s / NR}'; }
mp=$(mean "${plain[@]}") mg=$(mean "${gated[@]}")
printf 'without sluice:    %ss mean\nwith sluice:       %ss mean, added %.2fs (ratio %.2fx; target <= 1.50s added)\n' \
	"$mp" "$mg" "$(echo "$mg - $mp" | bc)" "$(echo "scale=3; $mg / $mp" | bc)"
up=$(mean "${uplain[@]}") ug=$(mean "${ugated[@]}")
printf 'guest clock at the root'"'"'s init: %ss without, %ss with sluice, added %.2fs\n' "$up" "$ug" "$(echo "$ug - $up" | bc)"
echo "sluice's own step timings (mean over $RUNS runs, seconds):"
cat "$TMP"/gated*.console | tr -d '\r' | sed -n 's/^sluice: \([a-z_]*\) ok (\([0-9.]*\)s).*/\1 \2/p' |
	awk '{s[$1] += $2; n[$1]++; if (!($1 in o)) { o[$1] = ++k; name[k] = $1 } }
	     END { t = 0; for (i = 1; i <= k; i++) { m = s[name[i]] / n[name[i]]; t += m; printf "  %-10s %6.3f\n", name[i], m }
	           printf "  %-10s %6.3f\n", "total", t }'
echo "  (mount includes the wait for the disk's modules, loading meanwhile; the plain boot loads them too)"
grep -ho 'gate open after [0-9.]*s' "$TMP"/gated*.console | sed 's/^/  /'
echo "(figures are noisy: the 2 cores are shared with other work; compare the ratio, not absolutes)"

#!/usr/bin/env bash
# Boot a dracut-built initramfs (module 90sluice, pre-pivot hook mode) in QEMU against real
# services: dracut mounts the root on /sysroot, the hook runs `sluice boot --hook`, and dracut
# switches root only when the gate opened. dracut-network is not installed here, so a test-only
# module (89testnet, made below, not part of the product) brings up eth0 before the hook.
#   dracut_gate_opens      good root: the gate opens in pre-pivot, the credential reaches the root
#   dracut_gate_blocks     changed root: FAILED appraise, sluice halts, dracut never switches
# and the same with systemd in the initrd (sluice-gate.service; 89testnet is then a unit):
#   dracut_systemd_gate_opens          the unit opens the gate, systemd switches root
#   dracut_systemd_failure_blocks_switch  with fail=shell (sluice exits 1 and leaves the stop to
#                                      the framework) the failed unit keeps systemd from ever
#                                      starting initrd-switch-root.service
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do
	[ -x "$b" ] || { fail setup "missing $b (make all)"; finish; }
done
command -v dracut >/dev/null || { fail setup "dracut missing (apt-get install dracut-core)"; finish; }
command -v ip >/dev/null || { fail setup "ip missing (apt-get install iproute2)"; finish; }
boot_kernel || { fail setup "cannot prepare the guest kernel"; finish; }
W=$TMP/world
boot_world_up "$W" dracut-host || { fail setup "services/enrolment failed"; finish; }

cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT-REACHED"
c=/run/credentials/@initrd/tool-token
[ -r $c ] && echo "CRED mode=$(stat -c %a $c) $(cat $c)"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
echo "ID=sluice-test" >"$TMP/root/etc/os-release" # systemd switches only into an OS tree
DIGEST=$("$SLUICE" measure "$TMP/root" | grep -o 'sha256:[0-9a-f]*' | head -1)
boot_world_policy "$W" "$DIGEST"
boot_mkroot "$TMP/root" "$TMP/root.img" 16M
cp -a "$TMP/root" "$TMP/root2"
echo "changed" >>"$TMP/root2/etc/motd"
boot_mkroot "$TMP/root2" "$TMP/root2.img" 16M

# the image: dracut's modules + our 90sluice + the test-only network module
conf=$TMP/etc-sluice
mkdir -p "$conf/keys" "$TMP/empty"
boot_guest_conf "$W" "$conf/sluice.conf"
cp "$W_VKEY" "$conf/keys/verifier.pem"
cp "$W_TSKEY" "$conf/keys/ts.pem"
db=$TMP/dracut
mkdir -p "$db/modules.d/89testnet"
for f in /usr/lib/dracut/*; do [ "${f##*/}" = modules.d ] || ln -s "$f" "$db/"; done
for m in /usr/lib/dracut/modules.d/*; do ln -s "$m" "$db/modules.d/"; done
ln -s "$TOP/initramfs/dracut/90sluice" "$db/modules.d/90sluice"
cat >"$db/modules.d/89testnet/module-setup.sh" <<'EOF'
#!/bin/bash
check() { return 255; }
depends() { return 0; }
installkernel() { instmods virtio_net; }
install() {
	inst_multiple ip sh modprobe sleep
	if dracut_module_included "systemd"; then
		inst_simple "$moddir/testnet.sh" /usr/bin/testnet.sh
		inst_simple "$moddir/testnet.service" "$systemdsystemunitdir/testnet.service"
		$SYSTEMCTL -q --root "$initdir" add-wants initrd.target testnet.service
	else
		inst_hook pre-pivot 50 "$moddir/testnet.sh"
	fi
}
EOF
cat >"$db/modules.d/89testnet/testnet.service" <<'EOF'
[Unit]
DefaultDependencies=no
Before=sluice-gate.service network-online.target
After=systemd-udevd.service
[Service]
Type=oneshot
ExecStart=/bin/sh /usr/bin/testnet.sh
EOF
cat >"$db/modules.d/89testnet/testnet.sh" <<'EOF'
#!/bin/sh
modprobe virtio_net 2>/dev/null
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
EOF
if ! SLUICE_BIN=$SLUICE SLUICE_CONF_DIR=$conf dracutbasedir=$db timeout 300 nice dracut --no-hostonly --force --no-compress \
	--kver "$KVER" --kmoddir "$KROOT/lib/modules/$KVER" -m "base rootfs-block udev-rules testnet sluice" \
	--conf /dev/null --confdir "$TMP/empty" --tmpdir "$TMP" "$TMP/dracut.img" >"$TMP/dracut.log" 2>&1; then
	fail setup "dracut failed"; tail -20 "$TMP/dracut.log" | sed 's/^/# /'; finish
fi
APPEND="root=/dev/vda rootfstype=ext4 ro rd.skipfsck rd.shell=0"

boot_qemu dgood -i "$TMP/dracut.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -a "$APPEND"
con=$TMP/dgood.console
if grep -q "^CRED mode=400 $(cat "$W/release/tool-token")" <(tr -d '\r' <"$con") &&
	grep -q 'sluice: seal ok' "$con" && grep -q 'sluice: mount ok .*already mounted' "$con"; then
	ok dracut_gate_opens
else
	fail dracut_gate_opens "no switch with the released credential"; boot_console dgood
fi
echo "# dracut boot with the gate: ${BOOT_SECONDS}s"

boot_qemu dbad -i "$TMP/dracut.img" -r "$TMP/root2.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -a "$APPEND"
con=$TMP/dbad.console
if ! grep -q ROOT-REACHED "$con" && grep -q 'sluice: FAILED appraise: rootfs.digest.unknown' "$con" &&
	grep -q 'failure action: halt' "$con"; then
	ok dracut_gate_blocks
else
	fail dracut_gate_blocks "the changed root was not refused"; boot_console dbad
fi

# ---- systemd in the initrd: sluice-gate.service ----
[ -x /usr/lib/systemd/systemd ] || { fail dracut_systemd_gate_opens "systemd not installed on this host"; finish; }
echo "allow_shell = yes" >>"$conf/sluice.conf"
if ! SLUICE_BIN=$SLUICE SLUICE_CONF_DIR=$conf dracutbasedir=$db timeout 300 nice dracut --no-hostonly --force --no-compress \
	--kver "$KVER" --kmoddir "$KROOT/lib/modules/$KVER" \
	-m "systemd systemd-initrd dracut-systemd base rootfs-block udev-rules testnet sluice" \
	--conf /dev/null --confdir "$TMP/empty" --tmpdir "$TMP" "$TMP/dracut-sd.img" >"$TMP/dracut-sd.log" 2>&1; then
	fail dracut_systemd_gate_opens "dracut (systemd) failed"; tail -20 "$TMP/dracut-sd.log" | sed 's/^/# /'; finish
fi
SDAPPEND="root=/dev/vda rootfstype=ext4 ro fsck.mode=skip rd.shell=0"
boot_qemu sdgood -i "$TMP/dracut-sd.img" -r "$TMP/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" -a "$SDAPPEND"
con=$TMP/sdgood.console
if grep -q "^CRED mode=400 $(cat "$W/release/tool-token")" <(tr -d '\r' <"$con") && grep -q 'sluice: seal ok' "$con"; then
	ok dracut_systemd_gate_opens
else
	fail dracut_systemd_gate_opens "no switch with the released credential"; boot_console sdgood
fi
boot_qemu sdbad -i "$TMP/dracut-sd.img" -r "$TMP/root2.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP" \
	-a "$SDAPPEND sluice.fail=shell" -e 'Failed to start.*sluice-ga' -w 180
con=$TMP/sdbad.console
if ! grep -q ROOT-REACHED "$con" && grep -q 'sluice: FAILED appraise: rootfs.digest.unknown' "$con" &&
	grep -Eaq 'Failed to start.*sluice-ga' "$con" && grep -Eaq 'Dependency failed for.*init' "$con" && ! grep -Eaq 'Starting.*initrd-switch-root.service' "$con"; then
	ok dracut_systemd_failure_blocks_switch
else
	fail dracut_systemd_failure_blocks_switch "the failed gate did not block the switch"; boot_console sdbad
fi
finish

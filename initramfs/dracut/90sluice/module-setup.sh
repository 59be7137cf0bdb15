#!/bin/bash
# dracut module: the sluice measured-boot attestation gate.
# Include with `dracut --add sluice` (or add_dracutmodules+=" sluice " in dracut.conf.d).
# Needs /etc/sluice/sluice.conf and the pinned keys under /etc/sluice/keys/ on the build host
# (SLUICE_CONF_DIR overrides /etc/sluice, SLUICE_BIN the sluice binary: tests, image builders).
# With systemd in the initrd the gate is sluice-gate.service (before initrd-switch-root.target);
# without it, a pre-pivot hook. Either way it runs after the root is mounted on /sysroot.

sluice_bin() { echo "${SLUICE_BIN:-$(command -v sluice)}"; }
sluice_conf() { echo "${SLUICE_CONF_DIR:-/etc/sluice}"; }

check() {
    [ -x "$(sluice_bin)" ] || return 1
    [ -r "$(sluice_conf)/sluice.conf" ] || return 1
    # only when asked for
    return 255
}

depends() {
    local deps="securityfs"
    # network comes from dracut-network (network-legacy / network-manager), when installed
    [ -d "$dracutbasedir/modules.d/40network" ] && deps="$deps network"
    echo "$deps"
    return 0
}

installkernel() {
    instmods virtio_net virtio_blk virtio_pci ext4 tpm_tis tpm_crb
}

install() {
    inst_binary "$(sluice_bin)" /usr/bin/sluice
    # tpm2-tss's tctildr dlopens the device TCTI at run time: ldd cannot see it
    inst_libdir_file "libtss2-tcti-device.so*"
    inst_simple "$(sluice_conf)/sluice.conf" /etc/sluice/sluice.conf
    local k
    for k in "$(sluice_conf)"/keys/*; do
        [ -e "$k" ] && inst_simple "$k" "/etc/sluice/keys/${k##*/}"
    done
    inst_dir /run/credentials
    if dracut_module_included "systemd"; then
        # the unit in the source tree is initramfs/systemd/sluice-gate.service (a symlink here)
        inst_simple "$(readlink -f "$moddir/sluice-gate.service")" "$systemdsystemunitdir/sluice-gate.service"
        $SYSTEMCTL -q --root "$initdir" add-requires initrd.target sluice-gate.service
        $SYSTEMCTL -q --root "$initdir" add-requires initrd-switch-root.target sluice-gate.service
    else
        inst_hook pre-pivot 90 "$moddir/sluice-gate.sh"
    fi
}

#!/bin/sh
# dracut pre-pivot hook: the root is mounted on $NEWROOT (/sysroot). Open the sluice gate or
# stop here. sluice applies fail=halt/reboot/retry itself; it returns non-zero only for
# fail=shell (dracut's emergency shell, if rd.shell allows it) or if it could not stop the machine.
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! /usr/bin/sluice boot --hook --set sysroot="${NEWROOT:-/sysroot}"; then
    die "sluice: the attestation gate is closed; not switching to the root file system"
fi

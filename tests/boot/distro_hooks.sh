#!/usr/bin/env bash
# The distribution integrations build initramfs images with sluice and its hook in the right
# place: dracut (pre-pivot hook, and the systemd unit when systemd is in the image) and
# initramfs-tools (hook + init-bottom script). Nothing is installed into the host: dracut gets a
# module directory of symlinks with our 90sluice added, mkinitramfs gets a private config
# directory, and /boot/config-VERSION comes from the unpacked kernel through a private mount
# namespace.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/boot/lib-boot.sh"

for t in dracut lsinitrd mkinitramfs lsinitramfs unshare; do
	command -v $t >/dev/null || { fail "tools" "$t missing (apt-get install dracut-core initramfs-tools-core)"; finish; }
done
[ -x "$SLUICE" ] || { fail "sluice" "$SLUICE not built"; finish; }
boot_kernel || { fail "kernel" "cannot prepare the guest kernel"; finish; }

conf=$TMP/etc-sluice
mkdir -p "$conf/keys" "$TMP/empty"
printf 'verifier = http://10.0.2.100:8080\nts = http://10.0.2.100:8081\n' >"$conf/sluice.conf"
echo "-----BEGIN PUBLIC KEY-----" >"$conf/keys/verifier.pem"
echo "-----BEGIN PUBLIC KEY-----" >"$conf/keys/ts.pem"
export SLUICE_BIN=$SLUICE SLUICE_CONF_DIR=$conf

# dracut's module tree with 90sluice added
db=$TMP/dracut
mkdir -p "$db/modules.d"
for f in /usr/lib/dracut/*; do [ "${f##*/}" = modules.d ] || ln -s "$f" "$db/"; done
for m in /usr/lib/dracut/modules.d/*; do ln -s "$m" "$db/modules.d/"; done
ln -s "$TOP/initramfs/dracut/90sluice" "$db/modules.d/90sluice"
run_dracut() { # OUT MODULES
	dracutbasedir=$db timeout 300 nice dracut --no-hostonly --no-kernel --force --no-compress -m "$2" \
		--conf /dev/null --confdir "$TMP/empty" --tmpdir "$TMP" "$1" >"$1.log" 2>&1
}
has() { grep -Eq "$2" "$1"; }

# closure: every library sluice links against must be in the image
closure=$(ldd "$SLUICE" | awk '/=> \//{print $3}' | xargs -n1 basename)
check_closure() { # LISTING NAME
	local l missing=
	for l in $closure libtss2-tcti-device.so.0; do
		sed 's/ -> .*//' "$1" | awk -v n="/$l" 'substr($0, length($0) - length(n) + 1) == n {f = 1} END {exit !f}' ||
			missing+=" $l"
	done
	if [ -z "$missing" ]; then ok "$2"; else fail "$2" "libraries missing from the image:$missing"; fi
}

# 1. dracut without systemd: the pre-pivot hook
if run_dracut "$TMP/dracut-hook.img" "base sluice"; then
	lsinitrd "$TMP/dracut-hook.img" >"$TMP/dracut-hook.lst" 2>&1
	l=$TMP/dracut-hook.lst
	if has $l ' usr/bin/sluice$' && has $l ' etc/sluice/sluice.conf$' && has $l ' etc/sluice/keys/verifier.pem$' &&
		has $l ' etc/sluice/keys/ts.pem$' && has $l ' usr/lib/dracut/hooks/pre-pivot/90-sluice-gate.sh$'; then
		ok dracut_hook_image
	else
		fail dracut_hook_image "sluice, its config or the pre-pivot hook missing"; sed 's/^/# /' $l | grep -E 'sluice|pre-pivot'
	fi
	check_closure $l dracut_hook_closure
	has $l 'sluice-gate.service' && fail dracut_hook_no_unit "systemd unit in a non-systemd image" || ok dracut_hook_no_unit
else
	fail dracut_hook_image "dracut failed"; tail -20 "$TMP/dracut-hook.img.log" | sed 's/^/# /'
fi

# 2. dracut with systemd: the unit, required by initrd.target and initrd-switch-root.target
if [ -x /usr/lib/systemd/systemd ]; then
	if run_dracut "$TMP/dracut-sd.img" "systemd systemd-initrd base sluice"; then
		lsinitrd "$TMP/dracut-sd.img" >"$TMP/dracut-sd.lst" 2>&1
		l=$TMP/dracut-sd.lst
		if has $l ' usr/bin/sluice$' && has $l '^-.* usr/lib/systemd/system/sluice-gate.service$' &&
			has $l 'initrd.target.requires/sluice-gate.service -> ' &&
			has $l 'initrd-switch-root.target.requires/sluice-gate.service -> ' &&
			! has $l 'hooks/pre-pivot/90-sluice-gate.sh'; then
			ok dracut_systemd_image
		else
			fail dracut_systemd_image "unit or its requires links missing"; sed 's/^/# /' $l | grep -E 'sluice'
		fi
		# the unit in the image is ours, and orders the gate before the switch
		mkdir -p "$TMP/x" && (cd "$TMP/x" && cpio -id --quiet usr/lib/systemd/system/sluice-gate.service <"$TMP/dracut-sd.img")
		u=$TMP/x/usr/lib/systemd/system/sluice-gate.service
		if [ -f "$u" ] && grep -q '^Before=.*initrd-switch-root.target' "$u" && grep -q '^ExecStart=/usr/bin/sluice boot --hook' "$u"; then
			ok dracut_systemd_unit
		else
			fail dracut_systemd_unit "unit content not as expected"
		fi
	else
		fail dracut_systemd_image "dracut failed"; tail -20 "$TMP/dracut-sd.img.log" | sed 's/^/# /'
	fi
else
	fail dracut_systemd_image "systemd not installed on this host"
fi

# 3. negative: without sluice.conf the module refuses to be included, and dracut fails
if SLUICE_CONF_DIR=$TMP/empty run_dracut "$TMP/dracut-noconf.img" "base sluice"; then
	fail dracut_needs_config "dracut built an image without /etc/sluice/sluice.conf"
else
	ok dracut_needs_config
fi

# 4. initramfs-tools: hook + init-bottom script from a private config directory
itc=$TMP/initramfs-tools
mkdir -p "$itc/hooks" "$itc/scripts/init-bottom" "$itc/conf.d" "$TMP/boot"
printf 'MODULES=list\nBUSYBOX=n\nCOMPRESS=gzip\n' >"$itc/initramfs.conf"
: >"$itc/modules"
cp "$TOP/initramfs/initramfs-tools/hooks/sluice" "$itc/hooks/"
cp "$TOP/initramfs/initramfs-tools/scripts/init-bottom/sluice" "$itc/scripts/init-bottom/"
cp "$KROOT/boot/config-$KVER" "$TMP/boot/"
if TMPDIR=$TMP timeout 300 unshare -m --propagation private sh -c \
	'mount --bind "$1" /boot && nice mkinitramfs -d "$2" -o "$3" "$4"' sh "$TMP/boot" "$itc" "$TMP/it.img" "$KVER" \
	>"$TMP/it.log" 2>&1 && [ -s "$TMP/it.img" ]; then
	lsinitramfs -l "$TMP/it.img" >"$TMP/it.lst" 2>&1
	lsinitramfs "$TMP/it.img" >"$TMP/it.names" 2>&1
	l=$TMP/it.names
	if has $l '^usr/bin/sluice$' && has $l '^etc/sluice/sluice.conf$' && has $l '^etc/sluice/keys/ts.pem$' &&
		has $l '^scripts/init-bottom/sluice$'; then
		ok initramfs_tools_image
	else
		fail initramfs_tools_image "sluice, config or init-bottom script missing"; grep sluice $l | sed 's/^/# /'
	fi
	sed 's|^|/|' $l >"$TMP/it.paths"
	check_closure "$TMP/it.paths" initramfs_tools_closure
	# the boot script is registered in init-bottom's ORDER file, so init runs it
	(cd "$TMP" && mkdir -p itx && cd itx && cpio -id --quiet scripts/init-bottom/ORDER <"$TMP/it.img" 2>/dev/null ||
		(zcat "$TMP/it.img" | cpio -id --quiet scripts/init-bottom/ORDER))
	if grep -q 'init-bottom/sluice' "$TMP/itx/scripts/init-bottom/ORDER" 2>/dev/null; then
		ok initramfs_tools_order
	else
		fail initramfs_tools_order "scripts/init-bottom/ORDER does not run sluice"
	fi
else
	fail initramfs_tools_image "mkinitramfs failed"; tail -20 "$TMP/it.log" | sed 's/^/# /'
fi
finish

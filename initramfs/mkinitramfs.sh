#!/usr/bin/env bash
# mkinitramfs.sh: build the minimal busybox initramfs that runs `sluice boot` as PID 1.
#
#   initramfs/mkinitramfs.sh -o OUT.img -k KERNEL_ROOT [options]
#
#   -o FILE          output (newc cpio, compressed as -z says)
#   -z COMP          compression: none (default), lz4, gzip, zstd, xz
#   -k DIR           unpacked kernel package root (holds lib/modules/VERSION)
#   -K VERSION       kernel version (default: the only one under DIR/lib/modules)
#   -s FILE          the sluice binary; without -s the image boots the root without the gate
#                    (used by bench/boot.sh as the baseline)
#   -c FILE          sluice.conf to install as /etc/sluice/sluice.conf
#   -V FILE          pinned verifier key  -> /etc/sluice/keys/verifier.pem (or the name given by -c)
#   -T FILE          pinned TS key        -> /etc/sluice/keys/ts.pem
#   -i FILE          /init to use (default: initramfs/init next to this script)
#   -a SRC:DEST      add a file (repeatable; DEST is a path inside the image)
#   -m MODULE        load one more kernel module at boot, with the root disk's (repeatable)
#
# Contents: busybox-static and its applet links, the kernel modules for a virtio disk + network and
# ext4 (with their dependencies, depmod'ed), sluice with its `ldd` closure plus
# libtss2-tcti-device.so.0 (tctildr dlopens it), /init, the config and the pinned keys. The copies
# of sluice and its libraries are stripped (`strip --strip-unneeded`; Debian's libraries already
# are, sluice is built with -g). A plain `cpio -H newc`, not compressed (-z or MKINITRAMFS_COMP to
# compress): unpacking the sluice closure (21 MB: sluice links libarchive statically, so libxml2
# and ICU stay out) is most of what the initramfs costs at boot, and under QEMU's TCG the kernel
# copies it uncompressed faster than it decompresses any format (see docs/boot.md). Deterministic file order; needs no root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out= kroot= kver= sluice= conf= vkey= tkey= init=$here/init
adds=() extra_mods=() comp=${MKINITRAMFS_COMP:-none}
# The modules the disk and the network share (loaded first), the root disk's (ext4 before
# virtio_blk: the file system is there when the disk appears) and the network's (virtio_rng seeds
# the CRNG the first network step needs). With the gate, /init loads the last two lists in two
# background jobs while sluice starts (docs/boot.md).
CORE_MODULES="virtio virtio_ring"
STORAGE_MODULES="virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci crc16 mbcache jbd2 crc32c_generic ext4 virtio_blk"
NET_MODULES="failover net_failover virtio_net virtio_rng"
MODULES="$CORE_MODULES $STORAGE_MODULES $NET_MODULES"

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "o:k:K:s:c:V:T:i:a:m:z:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) kroot=$OPTARG ;;
	K) kver=$OPTARG ;;
	s) sluice=$OPTARG ;;
	c) conf=$OPTARG ;;
	V) vkey=$OPTARG ;;
	T) tkey=$OPTARG ;;
	i) init=$OPTARG ;;
	a) adds+=("$OPTARG") ;;
	m) extra_mods+=("$OPTARG") ;;
	z) comp=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$out" ] && [ -n "$kroot" ] || { usage >&2; exit 2; }
die() { echo "mkinitramfs: $*" >&2; exit 1; }
[ -d "$kroot" ] || die "no directory $kroot"
case $comp in
gzip) compress() { gzip -1; } ;;
lz4) compress() { lz4 -l -1 -q; } ;; # the kernel reads only the legacy lz4 frame
zstd) compress() { zstd -q -1 -T0; } ;;
xz) compress() { xz -1 --check=crc32 -T0; } ;; # the kernel's xz knows crc32, not crc64
none) compress() { cat; } ;;
*) die "unknown compression '$comp' (none, lz4, gzip, zstd, xz)" ;;
esac
command -v "${comp/none/cat}" >/dev/null || die "$comp is not installed"
kroot=$(cd "$kroot" && pwd)
for f in "$sluice" "$conf" "$vkey" "$tkey" "$init"; do # relative paths: we cd into the image tree
	[ -z "$f" ] || [ -e "$f" ] || die "$f does not exist"
done
abs() { case $1 in /* | '') echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
sluice=$(abs "$sluice") conf=$(abs "$conf") vkey=$(abs "$vkey") tkey=$(abs "$tkey") init=$(abs "$init")
[ -n "$kver" ] || kver=$(ls "$kroot/lib/modules" | head -1)
[ -d "$kroot/lib/modules/$kver" ] || die "no modules for '$kver' under $kroot/lib/modules"
[ -x /bin/busybox ] || die "busybox-static is not installed (/bin/busybox)"
busybox --list >/dev/null 2>&1 || die "/bin/busybox is not a working busybox"
# (no `| grep -q` under pipefail: an early exit of grep can fail the pipeline with SIGPIPE)
case "$(ldd /bin/busybox 2>&1)" in
*"not a dynamic"*) ;;
*) die "/bin/busybox is not static (install busybox-static)" ;;
esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/mkinitramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cd "$stage"
mkdir -p bin sbin etc/sluice/keys proc sys dev run sysroot tmp lib/modules usr/bin usr/sbin "lib/modules/$kver"

# busybox and its applets (never overwrite busybox itself)
cp /bin/busybox bin/busybox
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] && continue
	[ -e "bin/$a" ] || ln -s busybox "bin/$a"
done
ln -sf ../bin/busybox sbin/modprobe
ln -sf ../bin/busybox sbin/switch_root

# kernel modules and their dependencies
for m in $MODULES "${extra_mods[@]+"${extra_mods[@]}"}"; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r ko; do
	rel=${ko#"$kroot"/}
	mkdir -p "$(dirname "$rel")"
	cp "$ko" "$rel"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -e "$kroot/lib/modules/$kver/$f" ] && cp "$kroot/lib/modules/$kver/$f" "lib/modules/$kver/"
done
depmod -b "$stage" "$kver"
printf '%s\n' $CORE_MODULES >etc/modules-load.core
printf '%s\n' $STORAGE_MODULES "${extra_mods[@]+"${extra_mods[@]}"}" >etc/modules-load
printf '%s\n' $NET_MODULES >etc/modules-load.net

# the gate: sluice and its library closure
strip_copy() { # FILE: drop symbols and debug info the loader does not need (a copy, never the original)
	case "$(LC_ALL=C readelf -S "$1" 2>/dev/null)" in
	*" .symtab "* | *" .debug_"*) chmod u+w "$1" && strip --strip-unneeded "$1" ;;
	esac
}
copy_closure() { # binary or library
	ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r lib; do
		[ -e ".$lib" ] && continue
		mkdir -p ".$(dirname "$lib")"
		cp -L "$lib" ".$lib"
		strip_copy ".$lib"
	done
}
if [ -n "$sluice" ]; then
	[ -x "$sluice" ] || die "sluice binary '$sluice' not executable"
	cp "$sluice" sbin/sluice
	strip_copy sbin/sluice
	copy_closure "$sluice"
	dev=$(ldconfig -p | awk '/libtss2-tcti-device.so.0 .*x86-64/ && !f {print $NF; f = 1}')
	[ -n "$dev" ] || die "libtss2-tcti-device.so.0 not found (install libtss2-dev)"
	mkdir -p ".$(dirname "$dev")"
	cp -L "$dev" ".$dev"
	strip_copy ".$dev"
	copy_closure "$dev"

fi
[ -n "$conf" ] && install -m 0644 "$conf" etc/sluice/sluice.conf
[ -n "$vkey" ] && install -m 0644 "$vkey" etc/sluice/keys/verifier.pem
[ -n "$tkey" ] && install -m 0644 "$tkey" etc/sluice/keys/ts.pem
install -m 0755 "$init" init
for a in "${adds[@]+"${adds[@]}"}"; do
	src=${a%%:*} dst=${a#*:}
	case $src in /*) ;; *) src=$OLDPWD/$src ;; esac
	mkdir -p ".$(dirname "$dst")"
	cp -a "$src" ".$dst"
done

case $out in /*) ;; *) out=$OLDPWD/$out ;; esac
find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0 | compress >"$out.tmp"
mv "$out.tmp" "$out"

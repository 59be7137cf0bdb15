# Helpers for the QEMU boot tests, the demo and the boot benchmark. Source after tests/lib.sh:
#   . "$TOP/tests/boot/lib-boot.sh"
#
#   boot_kernel                     download + unpack the Debian kernel once into $BUILD/kernel;
#                                   sets KROOT, KVER, VMLINUZ
#   boot_testroot DIR INIT_SCRIPT   a busybox root tree whose /sbin/init is INIT_SCRIPT
#   boot_add_sluice DIR             copy sluice + its library closure into a root tree
#   boot_mkroot DIR IMG [SIZE]      ext4 image of DIR (mke2fs -d), default size 64M
#   boot_initramfs OUT [mkinitramfs args...]
#   boot_qemu NAME [options]        boot once; console in $TMP/NAME.console, swtpm per boot
#       -i INITRD -r ROOT_IMG       required
#       -t TPMSTATE_DIR             TPM state (a fresh dir is made when missing)
#       -p PORT                     guestfwd 10.0.2.100:PORT -> 127.0.0.1:PORT (repeatable); none: -nic none
#       -u                          UEFI (OVMF) instead of SeaBIOS
#       -a "ARGS"                   extra kernel command line
#       -w SECONDS                  timeout (default $BOOT_TIMEOUT)
#     returns QEMU's status, 124 on timeout; BOOT_SECONDS holds the wall time.
#   boot_console NAME               print the guest console, each line prefixed "# "
#   boot_expect NAME CASE PATTERN   ok CASE if the console matches the (grep -E) pattern, else
#                                   not ok + the console
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
: "${TOP:?source tests/lib.sh first}"

boot_kernel() {
	local kdir=$BUILD/kernel deb pkg
	mkdir -p "$kdir"
	(
		flock -w 600 9 || exit 1
		if [ ! -e "$kdir/root/.done" ]; then
			pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends:/{print $2; exit}')
			[ -n "$pkg" ] || { echo "boot_kernel: no linux-image-amd64 in apt cache" >&2; exit 1; }
			deb=$(ls "$kdir"/"$pkg"_*.deb 2>/dev/null | head -1)
			if [ -z "$deb" ]; then
				(cd "$kdir" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "boot_kernel: apt-get download $pkg failed" >&2; exit 1; }
				deb=$(ls "$kdir"/"$pkg"_*.deb | head -1)
			fi
			rm -rf "$kdir/root"
			dpkg -x "$deb" "$kdir/root"
			depmod -b "$kdir/root" "$(ls "$kdir/root/lib/modules" | head -1)"
			touch "$kdir/root/.done"
		fi
	) 9>"$kdir/.lock" || return 1
	KROOT=$kdir/root
	KVER=$(ls "$KROOT/lib/modules" | head -1)
	VMLINUZ=$KROOT/boot/vmlinuz-$KVER
	[ -r "$VMLINUZ" ]
}

boot_testroot() { # DIR INIT_SCRIPT
	local d=$1 a
	mkdir -p "$d"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,usr/bin}
	cp /bin/busybox "$d/bin/busybox"
	for a in sh mount umount cat ls echo sha256sum poweroff sleep grep stat test find od hexdump wc head sed mkdir; do
		ln -sf busybox "$d/bin/$a"
	done
	install -m 0755 "$2" "$d/sbin/init"
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
	echo "measured root" >"$d/etc/motd"
}

boot_add_sluice() { # DIR
	local d=$1 lib
	install -D -m 0755 "$SLUICE" "$d/usr/bin/sluice"
	for lib in $(ldd "$SLUICE" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'); do
		install -D -m 0644 "$(readlink -f "$lib")" "$d$lib"
	done
}

boot_mkroot() { # DIR IMG [SIZE]
	rm -f "$2"
	mke2fs -q -F -t ext4 -d "$1" -L root -E root_owner=0:0 "$2" "${3:-64M}" >/dev/null
}

boot_initramfs() { # OUT args...
	local out=$1; shift
	boot_kernel || return 1
	"$TOP/initramfs/mkinitramfs.sh" -o "$out" -k "$KROOT" -K "$KVER" "$@"
}

boot_qemu() {
	local name=$1; shift
	local initrd= root= tpm= uefi= append= wait=$BOOT_TIMEOUT ports=() opt OPTIND=1
	while getopts "i:r:t:p:ua:w:" opt; do
		case $opt in
		i) initrd=$OPTARG ;; r) root=$OPTARG ;; t) tpm=$OPTARG ;; p) ports+=("$OPTARG") ;;
		u) uefi=1 ;; a) append=$OPTARG ;; w) wait=$OPTARG ;; *) return 2 ;;
		esac
	done
	boot_kernel || return 1
	local con=$TMP/$name.console sock net fw=() start rc swpid=
	[ -n "$tpm" ] || tpm=$TMP/$name.tpm
	mkdir -p "$tpm"
	sock=$(mktemp -u "/tmp/sluice-swtpm.XXXXXX")
	rm -f "$con"
	swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$sock" \
		--pid file="$TMP/$name.swtpm.pid" --log file="$TMP/$name.swtpm.log" --daemon \
		|| { echo "boot_qemu: swtpm failed to start" >&2; return 1; }
	swpid=$(cat "$TMP/$name.swtpm.pid" 2>/dev/null) && track_pid "$swpid"
	if [ ${#ports[@]} -gt 0 ]; then
		net="user,id=n0,restrict=on"
		for p in "${ports[@]}"; do net+=",guestfwd=tcp:10.0.2.100:$p-cmd:nc 127.0.0.1 $p"; done
		net=(-netdev "$net" -device virtio-net-pci,netdev=n0,romfile=)
	else
		net=(-nic none)
	fi
	if [ -n "$uefi" ]; then
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$TMP/$name.vars.fd"
		fw=(-drive if=pflash,format=raw,unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.fd,readonly=on
			-drive if=pflash,format=raw,unit=1,file="$TMP/$name.vars.fd")
	fi
	start=$(date +%s.%N)
	timeout --kill-after=5 "$wait" qemu-system-x86_64 -accel tcg -m 512 -smp 1 -machine q35 \
		"${fw[@]+"${fw[@]}"}" -kernel "$VMLINUZ" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet $append" -display none -serial file:"$con" \
		-monitor none -no-reboot \
		-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
		-drive file="$root",format=raw,if=virtio,readonly=on "${net[@]}" \
		</dev/null >"$TMP/$name.qemu.log" 2>&1
	rc=$?
	BOOT_SECONDS=$(echo "$(date +%s.%N) - $start" | bc)
	[ -n "$swpid" ] && kill "$swpid" 2>/dev/null
	rm -f "$sock"
	[ -s "$TMP/$name.qemu.log" ] && cat "$TMP/$name.qemu.log" >>"$con"
	return $rc
}

boot_console() { sed 's/\r$//; s/^/# /' "$TMP/$1.console" 2>/dev/null; }

boot_expect() { # NAME CASE PATTERN
	if grep -Eq "$3" "$TMP/$1.console" 2>/dev/null; then
		ok "$2"
	else
		fail "$2" "console of '$1' does not match /$3/"
		boot_console "$1"
	fi
}

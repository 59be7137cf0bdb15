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
#       -e PATTERN                  stop the guest 8 s after the console matches PATTERN (grep -E),
#                                   for guests that would wait forever (an emergency shell)
#       -n COUNT                    with -e: stop only once COUNT console lines match (default 1)
#       -R                          let the guest reboot (no -no-reboot; QEMU restarts it), for
#                                   counting boots with -e/-n
#       -x PATTERN -X FILE          once the console matches PATTERN, wait 1 s and type FILE into
#                                   the guest's serial console (its input is then a fifo)
#     returns QEMU's status, 124 on timeout, 0 when stopped by -e; BOOT_SECONDS holds the wall time.
#     Guests get BOOT_SMP vCPUs (default 2: QEMU's multi-threaded TCG runs them in parallel, the
#     gate's measurement hashes on both, and the kernel unpacks the initramfs on one while the
#     other initialises devices); qemu64 CPU model, so no SHA-NI.
#   boot_console NAME               print the guest console, each line prefixed "# "
#   boot_expect NAME CASE PATTERN   ok CASE if the console matches the (grep -E) pattern, else
#                                   not ok + the console
# tests/run.sh runs every tests/boot/*.sh: run directly, this library only says what it is.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "# lib-boot.sh: helpers sourced by the boot tests, the demo and bench/boot.sh"
	exit 0
fi
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
	mkdir -p "$d"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,usr/bin,lost+found}
	chmod 700 "$d/lost+found" # mke2fs -d keeps it; the tree then measures like the image
	cp /bin/busybox "$d/bin/busybox"
	for a in sh mount umount cat ls echo sha256sum poweroff sleep grep stat test find od hexdump wc head sed mkdir dmesg; do
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
		install -D -m 0755 "$(readlink -f "$lib")" "$d$lib"
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
	local initrd= root= tpm= uefi= append= wait=$BOOT_TIMEOUT ports=() opt OPTIND=1 stop_on=
	local stop_count=1 noreboot=-no-reboot send_on= send_file=
	while getopts "i:r:t:p:ua:w:e:n:Rx:X:" opt; do
		case $opt in
		i) initrd=$OPTARG ;; r) root=$OPTARG ;; t) tpm=$OPTARG ;; p) ports+=("$OPTARG") ;;
		u) uefi=1 ;; a) append=$OPTARG ;; w) wait=$OPTARG ;; e) stop_on=$OPTARG ;;
		n) stop_count=$OPTARG ;; R) noreboot= ;; x) send_on=$OPTARG ;; X) send_file=$OPTARG ;;
		*) return 2 ;;
		esac
	done
	if { [ -n "$send_on" ] && [ ! -r "$send_file" ]; } || { [ -z "$send_on" ] && [ -n "$send_file" ]; }; then
		echo "boot_qemu: -x PATTERN and -X FILE (readable) go together" >&2
		return 2
	fi
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
	# the serial console: a file; with -X QEMU's stdio instead (QEMU 7.2's file chardev has no
	# input), stdout appended to the console file and stdin a fifo that we hold open for writing
	# (so that opening it for reading does not wait, and QEMU sees no end of input while it runs)
	local serial=(-serial file:"$con") infd= fifo= qin=/dev/null qout=$TMP/$name.qemu.log
	: >"$TMP/$name.qemu.log"
	if [ -n "$send_on" ]; then
		fifo=$TMP/$name.serial-in
		rm -f "$fifo"
		mkfifo "$fifo" || return 1
		exec {infd}<>"$fifo"
		serial=(-chardev stdio,id=ser0,signal=off -serial chardev:ser0)
		qin=$fifo qout=$con
	fi
	start=$(date +%s.%N)
	timeout --kill-after=5 "$wait" qemu-system-x86_64 -accel tcg -m 512 -smp "${BOOT_SMP:-2}" -machine q35 \
		"${fw[@]+"${fw[@]}"}" -kernel "$VMLINUZ" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet $append" -display none "${serial[@]}" \
		-monitor none $noreboot \
		-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
		-drive file="$root",format=raw,if=virtio,readonly=on "${net[@]}" -device virtio-rng-pci \
		<"$qin" >>"$qout" 2>>"$TMP/$name.qemu.log" &
	local qpid=$! seen= sent= matched
	track_pid $qpid
	if [ -n "$stop_on$send_on" ]; then
		while kill -0 $qpid 2>/dev/null; do
			if [ -n "$send_on" ] && [ -z "$sent" ] && grep -Eaq "$send_on" "$con" 2>/dev/null; then
				sleep 1
				cat "$send_file" >&"$infd"
				sent=1
			fi
			if [ -n "$stop_on" ] && [ -z "$seen" ]; then
				matched=$(grep -Eac "$stop_on" "$con" 2>/dev/null)
				[ "${matched:-0}" -ge "$stop_count" ] && seen=$(date +%s)
			fi
			if [ -n "$seen" ] && [ $(($(date +%s) - seen)) -ge 8 ]; then
				pkill -TERM -P $qpid 2>/dev/null; kill $qpid 2>/dev/null
				break
			fi
			sleep 0.5
		done
	fi
	wait $qpid
	rc=$?
	[ -n "$seen" ] && rc=0
	if [ -n "$infd" ]; then
		exec {infd}>&-
		rm -f "$fifo"
	fi
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

# ---- the services a guest attests to (used by the boot tests, the demo and the benchmark) ----
#   boot_world_up W HOST_ID   TPM state with EK certs (swtpm/setup.sh), sluice-ts and
#                             sluice-verifier on free 127.0.0.1 ports, the host enrolled (AK and
#                             statement key persisted in the TPM), the TS trusting the verifier
#                             and the host's statement key. Sets W_TPMSTATE (state dir for
#                             boot_qemu -t), W_VP, W_TSP (ports), W_VKEY, W_TSKEY (pinned keys),
#                             W_HOST. Writes W/release/$W_CRED, the one credential the policy
#                             releases; the policy allows the tool stock_price. W_CRED: set it
#                             before the call; examples/demo.sh sets stock-quote-token, the
#                             credential examples/stock-price/stock_price.json presents. Default
#                             tool-token, the name tests/boot/{gate,hook_mode,dracut_boot}.sh read
#                             (to become stock-quote-token once they read $W_CRED).
#   boot_world_policy W ROOTFS_DIGEST [PCRS_JSON] [EXTRA_GROUP_JSON]
#                             (re)write the policy and reload the verifier (SIGHUP)
#   boot_guest_conf W FILE [extra lines...]   sluice.conf for a guest of this world
#   boot_world_down W         stop the services (also done on exit)
_wait_svc() { # PID PORT: until PORT accepts, while PID lives (20 s at most)
	local i
	for i in $(seq 400); do
		(exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
_world_ts_start() { # W
	local w=$1
	"$SLUICE_TS" --listen "127.0.0.1:$W_TSP" --state "$w/ts" --trust-dir "$w/ts-trust" --log-level warn \
		>>"$w/ts.log" 2>&1 &
	W_TS_PID=$!
	track_pid $W_TS_PID
	_wait_svc "$W_TS_PID" "$W_TSP" || { echo "boot_world_up: sluice-ts did not start:" >&2; tail -5 "$w/ts.log" >&2; return 1; }
}
boot_world_up() { # W HOST_ID
	local w=$1
	W_HOST=$2
	W_CRED=${W_CRED:-tool-token}
	mkdir -p "$w/ts-trust" "$w/ekca" "$w/release" "$w/enrol"
	"$TOP/swtpm/setup.sh" "$w/tpm" >/dev/null || { echo "boot_world_up: swtpm setup failed" >&2; return 1; }
	W_TPMSTATE=$w/tpm/state
	cp "$w/tpm/ca/chain.pem" "$w/ekca/swtpm-ca.pem"
	# the verifier's key, made ahead so the TS can trust its verdict statements from the start
	mkdir -p "$w/ver"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/ver/verifier-key.pem" 2>/dev/null
	chmod 600 "$w/ver/verifier-key.pem"
	openssl pkey -in "$w/ver/verifier-key.pem" -pubout -out "$w/ts-trust/verifier.pem" 2>/dev/null
	W_TSP=$(free_port)
	W_VP=$(free_port)
	_world_ts_start "$w" || return 1
	W_TSKEY=$w/ts.pem
	openssl pkey -in "$w/ts/service-key.pem" -pubout -out "$W_TSKEY" 2>/dev/null || {
		echo "boot_world_up: no TS key" >&2; return 1; }
	printf '%s-%s\n' "$W_CRED" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$w/release/$W_CRED"
	boot_world_policy "$w" "0000000000000000000000000000000000000000000000000000000000000000" "[15]" noreload || return 1
	"$SLUICE_VERIFIER" --listen "127.0.0.1:$W_VP" --state "$w/ver" --policy "$w/policy.json" \
		--ts "http://127.0.0.1:$W_TSP" --ts-key "$W_TSKEY" --ek-ca "$w/ekca" --id sluice-test-verifier --threads 4 \
		>>"$w/verifier.log" 2>&1 &
	W_V_PID=$!
	track_pid $W_V_PID
	_wait_svc "$W_V_PID" "$W_VP" || { echo "boot_world_up: sluice-verifier did not start:" >&2; tail -5 "$w/verifier.log" >&2; return 1; }
	W_VKEY=$w/ts-trust/verifier.pem
	# enrol the TPM from the host (the guest then uses the same state)
	SWTPM_TCTI=$("$TOP/swtpm/start.sh" "$w/tpm") || { echo "boot_world_up: swtpm start failed" >&2; return 1; }
	on_exit "'$TOP/swtpm/stop.sh' '$w/tpm'"
	if ! "$SLUICE" enroll --verifier "http://127.0.0.1:$W_VP" --host-id "$W_HOST" --tcti "$SWTPM_TCTI" \
		--out "$w/enrol" >"$w/enroll.log" 2>&1; then
		echo "boot_world_up: enrolment failed:" >&2; cat "$w/enroll.log" >&2
		"$TOP/swtpm/stop.sh" "$w/tpm"; return 1
	fi
	"$TOP/swtpm/stop.sh" "$w/tpm"
	cp "$w/enrol/statement-key.pem" "$w/ts-trust/host-$W_HOST.pem"
	# the TS reads its trust store at start
	kill "$W_TS_PID" 2>/dev/null; wait "$W_TS_PID" 2>/dev/null
	_world_ts_start "$w"
}
boot_world_policy() { # W ROOTFS_DIGEST [PCRS_JSON] [EXTRA_JSON | noreload]
	local w=$1 d=${2#sha256:} pcrs=${3:-[15]} extra=${4:-}
	[ "$extra" = noreload ] && extra=
	cat >"$w/policy.json.tmp" <<JSON
{"policy_id": "sluice-boot-test", "groups": [{"name": "guests", "hosts": ["*"], "pcrs": {"sha256": $pcrs},
  "rootfs": ["sha256:$d"], "release": {"$W_CRED": "release/$W_CRED"}, "tools": ["stock_price"],
  "verdict_lifetime": 3600${extra:+, $extra}}]}
JSON
	mv "$w/policy.json.tmp" "$w/policy.json"
	if [ "${4:-}" != noreload ] && [ -n "${W_V_PID:-}" ]; then
		kill -HUP "$W_V_PID"
		sleep 0.3
	fi
}
boot_guest_conf() { # W FILE [extra lines...]
	local w=$1 f=$2; shift 2
	{
		echo "# sluice.conf for a QEMU guest: services reached through QEMU's guestfwd"
		echo "verifier = http://10.0.2.100:$W_VP"
		echo "ts = http://10.0.2.100:$W_TSP"
		echo "host_id = $W_HOST"
		echo "insecure_http = yes"
		echo "ip = 10.0.2.15/24,10.0.2.2"
		echo "budget = 60"
		for l in "$@"; do echo "$l"; done
	} >"$f"
}
boot_world_down() {
	[ -n "${W_V_PID:-}" ] && kill "$W_V_PID" 2>/dev/null
	[ -n "${W_TS_PID:-}" ] && kill "$W_TS_PID" 2>/dev/null
	W_V_PID= W_TS_PID=
}

#!/usr/bin/env bash
# swtpm/start.sh DIR [--unix | --qemu]
#
# Start `swtpm socket` (TPM 2.0) on the state made by swtpm/setup.sh DIR (made on the fly
# if DIR/state does not exist), as a daemon with its pidfile DIR/swtpm.pid and log
# DIR/swtpm.log, and print the TCTI string on stdout (also written to DIR/tcti):
#   default  TCP on free 127.0.0.1 ports P (commands) and P+1 (control):
#            swtpm:host=127.0.0.1,port=P
#   --unix   unix sockets DIR/tpm.sock and DIR/tpm.sock.ctrl: swtpm:path=DIR/tpm.sock
#   --qemu   only the control socket DIR/sock for QEMU's -chardev socket,path=DIR/sock;
#            prints that path instead of a TCTI. swtpm exits when QEMU disconnects.
# The TPM is powered on and started (TPM2_Startup(CLEAR)) except in --qemu mode.
# Stop it with swtpm/stop.sh DIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 DIR [--unix | --qemu]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
dir=$1; shift
mode=tcp
while [ $# -gt 0 ]; do
	case "$1" in
	--unix) mode=unix; shift ;;
	--qemu) mode=qemu; shift ;;
	--tcp) mode=tcp; shift ;;
	*) usage ;;
	esac
done
command -v swtpm >/dev/null || { echo "start.sh: swtpm not found (apt-get install swtpm)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -e "$dir/state/tpm2-00.permall" ]; then
	"$here/setup.sh" "$dir" >/dev/null
fi
if [ -e "$dir/swtpm.pid" ] && kill -0 "$(cat "$dir/swtpm.pid" 2>/dev/null)" 2>/dev/null; then
	echo "start.sh: swtpm already running for $dir (pid $(cat "$dir/swtpm.pid")); use stop.sh first" >&2
	exit 1
fi
rm -f "$dir/swtpm.pid" "$dir/tcti"

# wait_ready TEST: up to 5 s for the server socket to accept connections.
wait_ready() {
	local i
	for i in $(seq 100); do
		if "$@" 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	return 1
}
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
unix_ready() { [ -S "$1" ]; }
pair_free() { # P: both P and P+1 bindable on 127.0.0.1
	python3 - "$1" <<'PY'
import socket, sys
p = int(sys.argv[1])
ss = []
try:
    for q in (p, p + 1):
        s = socket.socket(); s.bind(("127.0.0.1", q)); ss.append(s)
except OSError:
    sys.exit(1)
PY
}

common=(socket --tpm2 --tpmstate "dir=$dir/state" --pid "file=$dir/swtpm.pid" --log "file=$dir/swtpm.log,level=1" --daemon)
case $mode in
tcp)
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$(( (RANDOM * 32768 + RANDOM) % 30000 + 20000 ))
		pair_free "$port" || continue
		if swtpm "${common[@]}" --flags not-need-init,startup-clear \
			--server "type=tcp,port=$port,bindaddr=127.0.0.1" --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
			2>>"$dir/swtpm.log"; then
			if wait_ready tcp_open "$port"; then
				tcti="swtpm:host=127.0.0.1,port=$port"
				break
			fi
			"$here/stop.sh" "$dir" >/dev/null 2>&1 || true
		fi
	done
	[ -n "${tcti:-}" ] || { echo "start.sh: could not start swtpm on a free port (see $dir/swtpm.log)" >&2; exit 1; }
	;;
unix)
	rm -f "$dir/tpm.sock" "$dir/tpm.sock.ctrl"
	swtpm "${common[@]}" --flags not-need-init,startup-clear \
		--server "type=unixio,path=$dir/tpm.sock" --ctrl "type=unixio,path=$dir/tpm.sock.ctrl" 2>>"$dir/swtpm.log" ||
		{ echo "start.sh: swtpm failed (see $dir/swtpm.log)" >&2; exit 1; }
	wait_ready unix_ready "$dir/tpm.sock" || { echo "start.sh: swtpm socket did not appear" >&2; "$here/stop.sh" "$dir" >/dev/null 2>&1; exit 1; }
	tcti="swtpm:path=$dir/tpm.sock"
	;;
qemu)
	rm -f "$dir/sock"
	swtpm "${common[@]}" --ctrl "type=unixio,path=$dir/sock" 2>>"$dir/swtpm.log" ||
		{ echo "start.sh: swtpm failed (see $dir/swtpm.log)" >&2; exit 1; }
	wait_ready unix_ready "$dir/sock" || { echo "start.sh: swtpm socket did not appear" >&2; "$here/stop.sh" "$dir" >/dev/null 2>&1; exit 1; }
	tcti="$dir/sock"
	;;
esac
# the pidfile is written by the daemon; make sure it is there before we return
wait_ready test -s "$dir/swtpm.pid" || { echo "start.sh: no pidfile from swtpm" >&2; exit 1; }
echo "$tcti" >"$dir/tcti"
echo "$tcti"

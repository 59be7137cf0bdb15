#!/usr/bin/env bash
# swtpm/stop.sh DIR
#
# Stop the swtpm started by swtpm/start.sh DIR: exactly the process in DIR/swtpm.pid, and
# only if it is a swtpm working on DIR. SIGTERM, then SIGKILL after 3 s. Idempotent: exits
# 0 when nothing is running. The state in DIR is kept.
set -u
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
case "$1" in -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ -d "$1" ] || exit 0
dir=$(cd "$1" && pwd)
pidf=$dir/swtpm.pid
[ -s "$pidf" ] || exit 0
pid=$(cat "$pidf")
case "$pid" in ''|*[!0-9]*) rm -f "$pidf"; exit 0 ;; esac
cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
case "$cmd" in
*swtpm*"$dir/state"*) ;;
*) rm -f "$pidf"; exit 0 ;;  # stale pidfile: the pid is gone or belongs to someone else
esac
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 60); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
rm -f "$pidf" "$dir/tcti"
exit 0

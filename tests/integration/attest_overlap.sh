#!/usr/bin/env bash
# `sluice attest` fetches the verifier's challenge while it measures the root (agent/attest.c).
# The overlapped path ends affirming with the credential released; a failure in either branch is
# reported as that branch's failure (exit status 1, never a crash): a failed measurement wins
# (even while the challenge hangs: the challenge process is stopped, not waited for), a failed challenge after a good measurement names
# the challenge, a verifier that never answers is given up on within the budget, and a nonce
# that got old while measuring (here: a verifier slow to answer the challenge) is replaced by a
# fresh one before the quote: older than 5 s, or than a quarter of a short nonce_ttl.
. "$(dirname "$0")/../lib.sh"
FORGE=$BUILD/tests/helpers/verifier_forge
T=$TMP
for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER" "$FORGE"; do
	[ -x "$b" ] || { fail setup "missing $b"; finish; }
done
attest_keys "$T" 2>"$T/setup.err" || { fail setup "$(cat "$T/setup.err")"; finish; }
TA=$SWTPM_TCTI
attest_services "$T" --log-level warn 2>"$T/setup.err" || { fail setup "$(cat "$T/setup.err")"; finish; }
HOLEP=$(free_port) SLOWP=$(free_port)
check enroll bash -c "'$SLUICE' enroll --verifier '$V' --host-id overlap-1 --tcti '$TA' >/dev/null"

# a verifier that accepts connections and never answers; and one that answers the first
# challenge 6 s late and the third 2 s late (and forwards everything to the real verifier)
python3 - "$HOLEP" "$SLOWP" "$VP" <<'PY' >"$T/py.log" 2>&1 &
import socket, sys, threading, time
hole, slow, real = (int(a) for a in sys.argv[1:4])
held = []
def blackhole():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", hole)); s.listen(16)
    while True:
        held.append(s.accept()[0])
delays = {1: 6, 3: 2}
seen = [0]
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    finally:
        for x in (a, b):
            try: x.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def proxy(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(65536)
        if not d: return
        head += d
    if head.startswith(b"POST /v1/challenge"):
        seen[0] += 1
        time.sleep(delays.get(seen[0], 0))
    u = socket.create_connection(("127.0.0.1", real))
    u.sendall(head)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
def slowsrv():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", slow)); s.listen(16)
    while True:
        threading.Thread(target=proxy, args=(s.accept()[0],), daemon=True).start()
threading.Thread(target=blackhole, daemon=True).start()
slowsrv()
PY
track_pid $!
wait_port $HOLEP 10 && wait_port $SLOWP 10 || { fail setup "python servers: $(cat "$T/py.log")"; finish; }

attest() { # VERIFIER_URL HOST_ID ROOT BUDGET: runs sluice attest; stderr in $T/err, seconds in $secs, status in $arc
	local t0=$(date +%s.%N) rc
	rm -rf "$T/cred"
	"$SLUICE" attest --verifier "$1" --verifier-key "$T/v/verifier.pub.pem" --ts "$TS" --ts-key "$T/ts.keys" \
		--host-id "$2" --tcti "$TA" --root "$3" --out "$T/out" --cred-dir "$T/cred" --budget "$4" 2>"$T/err"
	rc=$?
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	arc=$rc
	return $rc
}
lt() { [ "$(echo "$1 < $2" | bc)" = 1 ]; }

# 1. the overlapped path: affirming, released, the challenge line says it was fetched while measuring
if attest "$V" overlap-1 "$T/root" 20; then
	if cmp -s "$T/cred/tool-token" "$T/token" && grep -q 'challenge .*sha256:.*(fetched while measuring: [0-9.]*s)' "$T/err"; then
		ok overlap_affirming
	else
		fail overlap_affirming "$(cat "$T/err")"
	fi
else
	fail overlap_affirming "$(cat "$T/err")"
fi
# the step lines keep their order (measure, extend, challenge, quote ...)
order=$(sed -n 's/^sluice: \([a-z]*\) .* ms.*/\1/p' "$T/err" | tr '\n' ' ')
[ "$order" = "measure extend challenge quote statement register appraise release " ] && ok overlap_step_order \
	|| fail overlap_step_order "$order"

# 2. the measurement fails, the challenge succeeds: the measurement's error, nothing released
if attest "$V" overlap-1 "$T/no-such-root" 20; then
	fail measure_fails_challenge_ok "accepted"
else
	[ "$arc" = 1 ] && grep -q '^sluice: measure: ' "$T/err" && ! grep -q 'challenge' "$T/err" && [ ! -e "$T/cred/tool-token" ] \
		&& ok measure_fails_challenge_ok || fail measure_fails_challenge_ok "status $arc: $(cat "$T/err")"
fi

# 3. the measurement fails while the challenge hangs: reported at once, not after the budget
if attest "http://127.0.0.1:$HOLEP" overlap-1 "$T/no-such-root" 20; then
	fail measure_fails_challenge_hangs "accepted"
else
	[ "$arc" = 1 ] && grep -q '^sluice: measure: ' "$T/err" && lt "$secs" 5 && ok measure_fails_challenge_hangs \
		|| fail measure_fails_challenge_hangs "status $arc after ${secs}s: $(cat "$T/err")"
fi

# 4. the measurement succeeds, the challenge is refused (unknown host): the challenge's error
if attest "$V" overlap-unknown "$T/root" 20; then
	fail challenge_refused "accepted"
else
	[ "$arc" = 1 ] && grep -q '^sluice: challenge: HTTP 404: host.unknown' "$T/err" && [ ! -e "$T/cred/tool-token" ] \
		&& ok challenge_refused || fail challenge_refused "status $arc: $(cat "$T/err")"
fi

# 5. the verifier is unreachable (nothing listens): the challenge's connect error
DEAD=$(free_port)
if attest "http://127.0.0.1:$DEAD" overlap-1 "$T/root" 20; then
	fail challenge_unreachable "accepted"
else
	[ "$arc" = 1 ] && grep -q "^sluice: challenge: http://127.0.0.1:$DEAD/v1/challenge: " "$T/err" && lt "$secs" 5 \
		&& ok challenge_unreachable || fail challenge_unreachable "status $arc after ${secs}s: $(cat "$T/err")"
fi

# 6. the verifier never answers the challenge: given up within the budget (3 s + grace)
if attest "http://127.0.0.1:$HOLEP" overlap-1 "$T/root" 3; then
	fail challenge_timeout "accepted"
else
	[ "$arc" = 1 ] && grep -q '^sluice: challenge: ' "$T/err" && lt "$secs" 8 && ok challenge_timeout \
		|| fail challenge_timeout "status $arc after ${secs}s: $(cat "$T/err")"
fi

# 7. the first nonce arrives 6 s after it was asked for (older than 5 s once measured): it is
#    dropped and a fresh one fetched in line, and the flow still ends affirming
if attest "http://127.0.0.1:$SLOWP" overlap-1 "$T/root" 30; then
	if cmp -s "$T/cred/tool-token" "$T/token" && grep -q '^sluice: challenge ' "$T/err" &&
		! grep -q 'fetched while measuring' "$T/err"; then
		ok stale_early_nonce_refetched
	else
		fail stale_early_nonce_refetched "$(cat "$T/err")"
	fi
else
	fail stale_early_nonce_refetched "$(cat "$T/err")"
fi

# 8. nonce_ttl 4 s: a nonce 2 s old after measuring is more than a quarter of its lifetime, so
#    it is refetched too (without the lifetime it would have been kept: younger than 5 s)
sed -i 's/^{"groups"/{"nonce_ttl": 4, "groups"/' "$T/policy.json"
kill -HUP $VPID
sleep 0.5
if attest "http://127.0.0.1:$SLOWP" overlap-1 "$T/root" 30; then
	if cmp -s "$T/cred/tool-token" "$T/token" && grep -q '^sluice: challenge ' "$T/err" &&
		! grep -q 'fetched while measuring' "$T/err" && lt 2 "$secs"; then
		ok short_ttl_early_nonce_refetched
	else
		fail short_ttl_early_nonce_refetched "after ${secs}s: $(cat "$T/err")"
	fi
else
	fail short_ttl_early_nonce_refetched "$(cat "$T/err")"
fi
finish

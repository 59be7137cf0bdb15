#!/usr/bin/env bash
# sluice-ts crash safety: concurrent registrations, `kill -9` of the service at a random
# moment, restart; repeated for several rounds. After every restart, EVERY receipt answered
# in ANY earlier round must still verify (independent verifier), each tree head those
# receipts name must be consistent with the new signed head (RFC 9162 consistency proof),
# no two acknowledged statements share an index, and sampled log entries must be exactly the
# acknowledged statements. Rounds: TS_CRASH_ROUNDS (default 3).
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
VERIFY="$PY $TOP/tests/helpers/ts_verify.py"
LOAD=$BUILD/tests/helpers/ts_load
ROUNDS=${TS_CRASH_ROUNDS:-3}
cd "$TMP" || exit 1

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out iss.pem 2>/dev/null
mkdir -p trust && openssl pkey -in iss.pem -pubout -out trust/iss.pem 2>/dev/null
PORT=$(free_port)
start_ts() {
	"$SLUICE_TS" --listen 127.0.0.1:$PORT --state state --trust-dir trust --log-level warn 2>>ts.log &
	TSPID=$!; track_pid $TSPID
	wait_port "$PORT" 10
}

start_ts || { fail start "sluice-ts did not listen"; finish; }
for r in $(seq 1 "$ROUNDS"); do
	mkdir -p "rec$r"
	"$LOAD" run --port "$PORT" --key iss.pem -c 32 -n 20000 --record "rec$r" --stop-on-error \
		--ready-file "ready$r" >"load$r.out" 2>&1 &
	lp=$!; track_pid $lp
	for _ in $(seq 1 200); do [ -e "ready$r" ] && break; sleep 0.05; done
	# kill somewhere between 150 and 900 ms into the load
	sleep "0.$(( RANDOM % 75 + 15 ))"
	kill -9 "$TSPID"; wait "$TSPID" 2>/dev/null
	wait "$lp"
	acked=$(awk '{print $4}' "load$r.out")
	if [ "${acked:-0}" -gt 0 ]; then ok "round $r: $acked registrations acknowledged before kill -9"
	else fail "round $r load" "nothing acknowledged: $(cat "load$r.out")"; fi
	start_ts || { fail "round $r restart" "sluice-ts did not come back"; break; }
	for d in $(seq 1 "$r"); do
		if out=$($VERIFY acked --url "http://127.0.0.1:$PORT" --record "rec$d" --sample 40); then
			ok "round $r: receipts of round $d verify after restart ($out)"
		else
			fail "round $r: receipts of round $d" "$out"
		fi
	done
done
# kill -9 while starting up (log recovery, signing the recovered head), a few times
for i in 1 2 3; do
	kill -9 "$TSPID"; wait "$TSPID" 2>/dev/null
	"$SLUICE_TS" --listen 127.0.0.1:$PORT --state state --trust-dir trust --log-level warn 2>>ts.log &
	TSPID=$!; track_pid $TSPID
	sleep "0.0$(( RANDOM % 9 + 1 ))"
done
kill -9 "$TSPID"; wait "$TSPID" 2>/dev/null
start_ts || fail "restart after startup kills" "sluice-ts did not come back"
all_ok=1
for d in $(seq 1 "$ROUNDS"); do
	out=$($VERIFY acked --url "http://127.0.0.1:$PORT" --record "rec$d" --sample 10) || { all_ok=0; fail "after startup kills: round $d" "$out"; }
done
[ $all_ok = 1 ] && ok "kill -9 during startup: every receipt still verifies"
if grep -q 'error' ts.log; then fail "service log" "$(grep error ts.log | head -3)"; else ok "no errors in the service log"; fi
finish

#!/usr/bin/env bash
# `sluice tools serve` end to end on loopback: real swtpm (statement key), real sluice-ts (two:
# the pinned one and an untrusted one), verdicts minted with libbundle, the stock-price quote
# service, and an MCP session over stdio. Checks the unlocked path, every locked case, policy
# and schema refusals, the timeout kill, the transparency service being down, and the audit.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tools_env.bash"

quiet() { "$@" >/dev/null 2>&1; }
tools_env_setup || { fail setup "could not set up swtpm / sluice-ts / quote service"; finish; }

INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tools_gateway.sh","version":"1"}}}'
INITD='{"jsonrpc":"2.0","method":"notifications/initialized"}'
LIST='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
call() { # ID TOOL ARGS_JSON
	printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2" "$3"
}

# session OUT RUN_DIR [TS_URL] -- MESSAGES...: one MCP session, answers in OUT (one per line)
session() {
	local out=$1 run=$2 ts=${3:-$TS_URL}; shift 4
	{ printf '%s\n' "$INIT" "$INITD"; printf '%s\n' "$@"; } |
		timeout 30 "$SLUICE" tools serve $(tools_env_opts "$run" "$ts") ${SESSION_OPTS:-} >"$out" 2>"$out.err"
}

# j OUT ID PYEXPR: evaluate PYEXPR on the answer with that id (bound to r); prints the value
j() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
out, want, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for line in open(out):
    r = json.loads(line)
    if r.get("id") == want:
        v = eval(expr, {"r": r, "json": json})
        print(v if not isinstance(v, (dict, list)) else json.dumps(v))
        sys.exit(0)
print("NO-ANSWER")
EOF
}

# ---- unlocked -------------------------------------------------------------------------------
RUN=$TMP/run-good
tools_env_verdict "$RUN" || fail mint "could not mint the good verdict"
check status_unlocked "$SLUICE" tools status $(tools_env_opts "$RUN") >/dev/null

rm -f "$MARK"
session "$TMP/s1" "$RUN" "" -- "$LIST" "$(call 2 stock_price '{"symbol":"INTC"}')" \
	"$(call 3 stock_price '{"symbol":"intc"}')" "$(call 4 stock_price '{"symbol":"INTC","x":1}')" \
	"$(call 5 forbidden '{}')" "$(call 6 nosuchtool '{}')" "$(call 7 hang '{}')" "$(call 8 touch_marker '{"n":1}')" \
	"$(call 9 stock_price '{"symbol":"ZZZZ"}')" "$(call 10 quote_tiny '{"symbol":"INTC"}')" "$(call 11 silent_http '{}')"

[ "$(j "$TMP/s1" 0 'r["result"]["protocolVersion"]')" = 2025-06-18 ] && ok initialize_negotiated ||
	fail initialize_negotiated "$(head -c 300 "$TMP/s1")"
[ "$(j "$TMP/s1" 1 'sorted(t["name"] for t in r["result"]["tools"])')" = '["hang", "quote_tiny", "silent_http", "stock_price", "touch_marker"]' ] &&
	ok list_only_allowed_tools || fail list_only_allowed_tools "$(j "$TMP/s1" 1 'r')"
txt=$(j "$TMP/s1" 2 'json.loads(r["result"]["content"][0]["text"])["price"]')
[ "$txt" = 24.31 ] && [ "$(j "$TMP/s1" 2 'r["result"]["isError"]')" = False ] && ok call_stock_price ||
	fail call_stock_price "$(j "$TMP/s1" 2 'r')"
# the receipt in _meta verifies for the statement in _meta, and the statement is this call
j "$TMP/s1" 2 'r["result"]["_meta"]["sluice/receipt"]' | base64 -d >"$TMP/call.receipt"
j "$TMP/s1" 2 'r["result"]["_meta"]["sluice/statement"]' | base64 -d >"$TMP/call.statement"
[ -s "$TMP/call.receipt" ] && [ -n "$(j "$TMP/s1" 2 'r["result"]["_meta"]["sluice/entryId"]')" ] &&
	ok call_has_receipt_and_entry || fail call_has_receipt_and_entry "$(j "$TMP/s1" 2 'r["result"].get("_meta")')"
check receipt_verifies quiet "$SLUICE" receipt verify --statement "$TMP/call.statement" --receipt "$TMP/call.receipt" \
	--keyset "$TS_KEY"
curl -sf "$TS_URL/entries/$(j "$TMP/s1" 2 'r["result"]["_meta"]["sluice/entryId"]')/statement" -o "$TMP/logged.statement" &&
	cmp -s "$TMP/logged.statement" "$TMP/call.statement" && ok entry_id_names_the_logged_statement ||
	fail entry_id_names_the_logged_statement "GET /entries/{id}/statement differs"

[ "$(j "$TMP/s1" 3 'r["error"]["code"], r["error"]["data"]["reason"]')" = "(-32602, 'arguments.invalid')" ] &&
	ok schema_violation_refused || fail schema_violation_refused "$(j "$TMP/s1" 3 'r')"
[ "$(j "$TMP/s1" 4 'r["error"]["data"]["reason"]')" = arguments.invalid ] && ok additional_property_refused ||
	fail additional_property_refused "$(j "$TMP/s1" 4 'r')"
[ "$(j "$TMP/s1" 5 'r["error"]["code"], r["error"]["data"]["reason"]')" = "(-32001, 'tool.not-allowed')" ] &&
	ok disallowed_tool_refused || fail disallowed_tool_refused "$(j "$TMP/s1" 5 'r')"
[ "$(j "$TMP/s1" 6 'r["error"]["code"]')" = -32602 ] && ok unknown_tool_refused || fail unknown_tool_refused "$(j "$TMP/s1" 6 'r')"
[ "$(j "$TMP/s1" 7 'r["result"]["isError"], r["result"]["content"][0]["text"].split(":")[0]')" = "(True, 'tool.timeout')" ] &&
	[ -n "$(j "$TMP/s1" 7 'r["result"]["_meta"]["sluice/receipt"]')" ] && ok hanging_tool_killed_at_timeout ||
	fail hanging_tool_killed_at_timeout "$(j "$TMP/s1" 7 'r')"
pgrep -f "^/bin/sleep 30$" >/dev/null && fail hang_process_gone "sleep 30 still running" || ok hang_process_gone
for c in "9 tool.http http_error_status" "10 tool.output-limit http_output_limit" "11 tool.timeout http_timeout"; do
	set -- $c
	[ "$(j "$TMP/s1" "$1" 'r["result"]["isError"], r["result"]["content"][0]["text"].split(":")[0]')" = "(True, '$2')" ] &&
		ok "$3" || fail "$3" "$(j "$TMP/s1" "$1" 'r')"
done
[ -e "$MARK" ] && ok allowed_command_ran || fail allowed_command_ran "marker missing: $(j "$TMP/s1" 8 'r')"

# ---- the transparency service is down: refused, tool not run ----------------------------------
rm -f "$MARK"
# (a refused connection is retried until --budget runs out: keep it short here)
SESSION_OPTS="--budget 1.5" session "$TMP/s2" "$RUN" "http://127.0.0.1:$(free_port)" -- "$(call 2 touch_marker '{}')"
[ "$(j "$TMP/s2" 2 'r["error"]["data"]["reason"]')" = call.register ] && [ ! -e "$MARK" ] &&
	grep -q 'budget' "$TMP/s2.err" && ok ts_down_refused_not_run ||
	fail ts_down_refused_not_run "$(j "$TMP/s2" 2 'r') marker=$([ -e "$MARK" ] && echo present)"
# a service that answers with a receipt under a key we do not pin: refused, not run
session "$TMP/s2b" "$RUN" "$TS2_URL" -- "$(call 2 touch_marker '{}')"
[ "$(j "$TMP/s2b" 2 'r["error"]["data"]["reason"]')" = call.receipt ] && [ ! -e "$MARK" ] &&
	ok untrusted_call_receipt_refused_not_run || fail untrusted_call_receipt_refused_not_run "$(j "$TMP/s2b" 2 'r')"

# ---- locked cases: nothing listed, calls refused with the reason, nothing executed ------------
locked_case() { # NAME RUN_DIR WANT_REASON
	local name=$1 run=$2 want=$3 out=$TMP/locked-$1
	rm -f "$MARK"
	session "$out" "$run" "" -- "$LIST" "$(call 2 touch_marker '{}')"
	local n reason
	n=$(j "$out" 1 'len(r["result"]["tools"])')
	reason=$(j "$out" 2 'r["error"]["data"]["reason"]')
	if [ "$n" = 0 ] && [ "$reason" = "$want" ] && [ ! -e "$MARK" ]; then ok "locked_$name"
	else fail "locked_$name" "tools=$n reason=$reason (want $want) marker=$([ -e "$MARK" ] && echo ran) $(tail -n1 "$out.err")"; fi
	"$SLUICE" tools status $(tools_env_opts "$run") >/dev/null 2>&1 && fail "status_locked_$name" "status says unlocked" ||
		ok "status_locked_$name"
}
mkdir -p "$TMP/run-none"
locked_case no_verdict "$TMP/run-none" locked.no-verdict
tools_env_verdict "$TMP/run-expired" --exp-in -5 >/dev/null && locked_case expired "$TMP/run-expired" locked.expired
tools_env_verdict "$TMP/run-future" --iat-in 3600 --exp-in 7200 >/dev/null &&
	locked_case not_yet_valid "$TMP/run-future" locked.expired
tools_env_verdict "$TMP/run-otherhost" --host host-b >/dev/null && locked_case other_host "$TMP/run-otherhost" locked.wrong-host
tools_env_verdict "$TMP/run-contra" --status contraindicated >/dev/null &&
	locked_case not_affirming "$TMP/run-contra" locked.not-affirming
tools_env_verdict "$TMP/run-untrusted" --ts "$TS2_URL" --ts-key "$TS2_KEY" >/dev/null &&
	locked_case untrusted_ts_receipt "$TMP/run-untrusted" locked.bad-receipt
# a verdict signed by another key than the pinned verifier key
mkdir -p "$TMP/run-rogue" && "$TESTKIT" verdict --key "$TMP/rogue.pem" --host "$HOST" --out "$TMP/run-rogue" \
	--tools touch_marker --ts "$TS_URL" --ts-key "$TS_KEY" && locked_case rogue_verifier "$TMP/run-rogue" locked.bad-signature
# one flipped byte: in the signature, in the claims, and in the receipt
flip() { # FILE OFFSET_FROM_END
	python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); i=len(b)-int(sys.argv[2]); b[i]^=1; open(p,"wb").write(b)' "$1" "$2"
}
cp -r "$RUN" "$TMP/run-flip-sig" && flip "$TMP/run-flip-sig/verdict.cose" 5 && locked_case flipped_signature_byte "$TMP/run-flip-sig" locked.bad-signature
cp -r "$RUN" "$TMP/run-flip-claims" && flip "$TMP/run-flip-claims/verdict.cose" 90 &&
	locked_case flipped_claims_byte "$TMP/run-flip-claims" locked.bad-signature
cp -r "$RUN" "$TMP/run-flip-rcpt" && flip "$TMP/run-flip-rcpt/verdict-receipt.cose" 5 &&
	locked_case flipped_receipt_byte "$TMP/run-flip-rcpt" locked.bad-receipt
cp -r "$RUN" "$TMP/run-norcpt" && rm "$TMP/run-norcpt/verdict-receipt.cose" && locked_case no_receipt "$TMP/run-norcpt" locked.bad-receipt
# a verdict of this host swapped in from another (valid) verdict statement: statement does not cover it
cp -r "$RUN" "$TMP/run-swap" && cp "$TMP/run-otherhost/verdict.cose" "$TMP/run-swap/verdict.cose" &&
	locked_case swapped_verdict "$TMP/run-swap" locked.bad-receipt
# released credential missing
chmod u+w "$CRED/stock-quote-token"; mv "$CRED/stock-quote-token" "$TMP/token.saved"
locked_case no_credential "$RUN" locked.no-credential
mv "$TMP/token.saved" "$CRED/stock-quote-token"

# ---- the journal and the audit ------------------------------------------------------------
out=$("$SLUICE" tools audit --journal "$TMP/journal" --ts-key "$TS_KEY" --config /dev/null 2>&1)
rc=$?
# calls that reached the journal: stock_price, hang, touch_marker and the three HTTP edge
# cases (the refused ones never did)
if [ $rc -eq 0 ] && [ "$(grep -c ' receipt ok$' <<<"$out")" = 6 ] && grep -q 'stock_price {"symbol":"INTC"} -> ok' <<<"$out" &&
	grep -q 'hang {} -> tool.timeout' <<<"$out"; then ok audit_verifies_calls
else fail audit_verifies_calls "rc=$rc: $out"; fi
cp "$TMP/journal" "$TMP/journal.bad"
sed -i 's/"INTC"/"AMD"/' "$TMP/journal.bad"
check_fails audit_detects_edit quiet "$SLUICE" tools audit --journal "$TMP/journal.bad" --ts-key "$TS_KEY" --config /dev/null
check_fails audit_wrong_ts_key quiet "$SLUICE" tools audit --journal "$TMP/journal" --ts-key "$TS2_KEY" --config /dev/null

# ---- protocol robustness over the real binary ---------------------------------------------
{ printf '%s\n' "$INIT" '{"jsonrpc":"2.0","id":1,"method":' '[]' "$(head -c 70000 /dev/zero | tr '\0' 'x')" \
	'{"jsonrpc":"2.0","id":9,"method":"ping"}'; } |
	timeout 10 "$SLUICE" tools serve $(tools_env_opts "$RUN") --max-message 65536 >"$TMP/s3" 2>/dev/null
rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <"$TMP/s3")" = 5 ] && [ "$(j "$TMP/s3" 9 'r["result"]')" = '{}' ] && ok malformed_input_survives ||
	fail malformed_input_survives "rc=$rc $(cat "$TMP/s3")"

# ---- the demo step (examples/stock-price/demo-step.sh), as make demo runs it -----------------
if SLUICE=$SLUICE RUN_DIR=$RUN CRED_DIR=$CRED VERIFIER_KEY=$VKEY_PUB TS_URL=$TS_URL TS_KEY=$TS_KEY HOST_ID=$HOST \
	TCTI=$TCTI WORK=$TMP/demo bash "$TOP/examples/stock-price/demo-step.sh" >"$TMP/demo.out" 2>&1 &&
	grep -q "price: INTC 24.31 USD" "$TMP/demo.out"; then ok demo_step
else fail demo_step "$(tr '\n' '|' <"$TMP/demo.out")"; fi
# the same step as examples/demo.sh runs it: the guest's outputs, TPM state and the demo world
mkdir -p "$TMP/demo-world/world/release"
cp "$CRED/stock-quote-token" "$TMP/demo-world/world/release/stock-quote-token"
tools_env_verdict "$TMP/run-demo" --tools stock_price >/dev/null
if DEMO_DIR=$TMP/demo-world DEMO_OUT=$TMP/run-demo SLUICE=$SLUICE TS_URL=$TS_URL TS_KEY=$TS_KEY VERIFIER_KEY=$VKEY_PUB \
	TPM_STATE=$TMP/tpm/state HOST_ID=$HOST CRED_DIR=$TMP/no-such-dir WORK=$TMP/demo2 \
	bash "$TOP/examples/stock-price/demo-step.sh" >"$TMP/demo2.out" 2>&1 &&
	grep -q "tools/call stock_price" "$TMP/demo2.out" && grep -q "price: INTC 24.31 USD" "$TMP/demo2.out"; then ok demo_step_in_make_demo
else fail demo_step_in_make_demo "$(tr '\n' '|' <"$TMP/demo2.out")"; fi

check help_works quiet "$SLUICE" tools --help
finish

# Shared setup for the tool gateway tests (tools_gateway.sh, tools_mcp_sdk.sh). Source it after
# tests/lib.sh. Everything real, on loopback, under $TMP:
#   - a swtpm (statement key), a test verifier key, two sluice-ts instances (the pinned one and
#     an untrusted one), the stock-price quote service with its released credential;
#   - tools_env_verdict DIR [testkit verdict options...] mints a verdict into DIR like the boot
#     flow leaves it in /run/sluice (verdict, verdict statement, receipt).
# Sets: TCTI, TS_URL, TS_KEY, TS2_URL, TS2_KEY, VKEY (private), VKEY_PUB, CRED, TOOLS_D, QUOTE_PORT,
#       HOST=host-a, TESTKIT, MARK (a file the touch_marker tool creates when it runs).
TESTKIT=$BUILD/tests/helpers/tools_testkit
HOST=host-a

tools_env_ts() { # NAME -> starts sluice-ts, sets ${NAME}_URL and ${NAME}_KEY
	local name=$1 port pid
	port=$(free_port)
	mkdir -p "$TMP/$name"
	"$SLUICE_TS" --listen "127.0.0.1:$port" --state "$TMP/$name" --trust-dir "$TMP/trust" --log-level warn \
		>"$TMP/$name.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	eval "${name}_PID=$pid"
	wait_port "$port" 10 || { echo "# sluice-ts $name did not start"; cat "$TMP/$name.log"; return 1; }
	curl -sf "http://127.0.0.1:$port/.well-known/scitt-keys" -o "$TMP/$name.keys" || return 1
	eval "${name}_URL=http://127.0.0.1:$port"
	eval "${name}_KEY=$TMP/$name.keys"
}

tools_env_setup() {
	local ex=$TOP/examples/stock-price
	mkdir -p "$TMP/trust" "$TMP/cred" "$TMP/tools.d" || return 1
	swtpm_up "$TMP/tpm" || return 1
	TCTI=$SWTPM_TCTI
	"$TESTKIT" keygen "$TMP/verifier.pem" || return 1
	VKEY=$TMP/verifier.pem
	VKEY_PUB=$TMP/verifier.pub.pem
	cp "$VKEY_PUB" "$TMP/trust/verifier.pem"
	# a second verifier key, trusted by the transparency services but not pinned by the gateway
	"$TESTKIT" keygen "$TMP/rogue.pem" || return 1
	cp "$TMP/rogue.pub.pem" "$TMP/trust/rogue.pem"
	"$TESTKIT" sk-pub --tcti "$TCTI" --out "$TMP/trust/statement-key.pem" || return 1
	tools_env_ts TS || return 1
	tools_env_ts TS2 || return 1
	# the released credential and the quote service that demands it
	CRED=$TMP/cred
	cp "$ex/stock-quote-token" "$CRED/stock-quote-token"
	chmod 0400 "$CRED/stock-quote-token"
	QUOTE_PORT=$(free_port)
	python3 "$ex/quote_service.py" --port "$QUOTE_PORT" --csv "$ex/prices.csv" \
		--token-file "$CRED/stock-quote-token" 2>"$TMP/quote.log" &
	track_pid $!
	wait_port "$QUOTE_PORT" 10 || { echo "# quote service did not start"; cat "$TMP/quote.log"; return 1; }
	# tools: the example, one that hangs, one that marks that it ran, one no verdict allows
	sed "s/127.0.0.1:8931/127.0.0.1:$QUOTE_PORT/" "$ex/stock_price.json" >"$TOOLS_D/stock_price.json"
	MARK=$TMP/marker
	cat >"$TOOLS_D/hang.json" <<-EOF
	{"name": "hang", "description": "never answers", "inputSchema": {"type": "object"},
	 "command": {"argv": ["/bin/sleep", "30"], "stdin": "none"}, "timeoutMs": 500}
	EOF
	cat >"$TOOLS_D/touch_marker.json" <<-EOF
	{"name": "touch_marker", "description": "records that it ran", "inputSchema": {"type": "object",
	 "properties": {"n": {"type": "integer", "minimum": 0}}, "additionalProperties": false},
	 "command": {"argv": ["/usr/bin/touch", "$MARK"], "stdin": "none"}, "timeoutMs": 2000}
	EOF
	# HTTP edge cases: an output limit the answer exceeds, a server that accepts and never answers
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["name"]="quote_tiny"; d["maxOutputBytes"]=10; json.dump(d, open(sys.argv[2],"w"))' \
		"$TOOLS_D/stock_price.json" "$TOOLS_D/quote_tiny.json"
	SILENT_PORT=$(free_port)
	python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(8); time.sleep(600)' \
		"$SILENT_PORT" &
	track_pid $!
	cat >"$TOOLS_D/silent_http.json" <<-EOF
	{"name": "silent_http", "description": "a server that never answers", "inputSchema": {"type": "object"},
	 "http": {"url": "http://127.0.0.1:$SILENT_PORT/"}, "timeoutMs": 300}
	EOF
	cat >"$TOOLS_D/forbidden.json" <<-EOF
	{"name": "forbidden", "description": "configured but not allowed by any verdict",
	 "inputSchema": {"type": "object"}, "command": {"argv": ["/usr/bin/touch", "$MARK"]}}
	EOF
}
TOOLS_D=$TMP/tools.d

# tools_env_verdict DIR [--host H] [--exp-in S] [--status S] [--ts URL --ts-key K] ...
# Defaults: this host, the three allowed tools, registered with the pinned TS.
tools_env_verdict() {
	local dir=$1; shift
	mkdir -p "$dir"
	"$TESTKIT" verdict --key "$VKEY" --host "$HOST" --out "$dir" --tools stock_price,hang,touch_marker,quote_tiny,silent_http \
		--ts "$TS_URL" --ts-key "$TS_KEY" "$@"
}

# gateway options for a run dir
tools_env_opts() { # RUN_DIR [TS_URL]
	echo --tools-dir "$TOOLS_D" --run-dir "$1" --cred-dir "$CRED" --verifier-key "$VKEY_PUB" \
		--ts-key "$TS_KEY" --ts "${2:-$TS_URL}" --host-id "$HOST" --tcti "$TCTI" \
		--journal "$TMP/journal" --config /dev/null
}

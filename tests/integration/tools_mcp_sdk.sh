#!/usr/bin/env bash
# `sluice tools serve` driven by the official MCP TypeScript SDK (@modelcontextprotocol/sdk,
# pinned in tests/mcp/package-lock.json, installed here with `npm ci`): connect over stdio,
# list tools, call stock_price, check the result, and check that the receipt in _meta
# verifies with `sluice receipt verify`. Then the same client against a locked gateway.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/tools_env.bash"

MCP=$TOP/tests/mcp
command -v node >/dev/null && command -v npm >/dev/null || { fail mcp_sdk "node and npm are required (nodejs)"; finish; }
# npm ci only when the lock file changed since the last install
if [ ! -e "$MCP/node_modules/.package-lock.json" ] || [ "$MCP/package-lock.json" -nt "$MCP/node_modules/.package-lock.json" ]; then
	(cd "$MCP" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
		{ fail npm_ci "$(tail -n 5 "$TMP/npm.log")"; finish; }
fi
ok npm_ci

tools_env_setup || { fail setup "could not set up swtpm / sluice-ts / quote service"; finish; }
quiet() { "$@" >/dev/null 2>&1; }
args_json() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' $(tools_env_opts "$1"); }

RUN=$TMP/run-good
tools_env_verdict "$RUN" || fail mint "could not mint the verdict"
mkdir -p "$TMP/out"
SLUICE="$SLUICE" SLUICE_ARGS="$(args_json "$RUN")" OUT_DIR="$TMP/out" timeout 60 node "$MCP/client.mjs" 2>"$TMP/client.err"
rc=$?
[ $rc -eq 0 ] || echo "# client rc=$rc: $(tail -n 5 "$TMP/client.err")"
check sdk_receipt_verifies quiet "$SLUICE" receipt verify --statement "$TMP/out/call.statement" --receipt "$TMP/out/call.receipt" \
	--keyset "$TS_KEY"

mkdir -p "$TMP/run-none"
SLUICE="$SLUICE" SLUICE_ARGS="$(args_json "$TMP/run-none")" OUT_DIR="$TMP/out" EXPECT=locked timeout 60 \
	node "$MCP/client.mjs" 2>>"$TMP/client.err" | sed 's/^\(not \)\{0,1\}ok sdk_/&locked_/'
finish

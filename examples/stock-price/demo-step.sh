#!/usr/bin/env bash
# examples/stock-price/demo-step.sh -- the last step of `make demo`: an LLM-style client asks the
# sluice tool gateway for the latest INTC price; the call is checked against the verdict,
# registered with the transparency service (statement signed by the TPM statement key), run,
# and answered with the price and its receipt; then the receipt is verified offline.
#
# Run after an attestation left its outputs (verdict, verdict statement, verdict receipt in
# RUN_DIR, the released credential in CRED_DIR). Environment:
#   SLUICE        sluice binary (default: $BUILD/sluice, BUILD defaults to build)
#   RUN_DIR       default DEMO_OUT if set, else /run/sluice
#   CRED_DIR      default /run/credentials/@initrd
#   VERIFIER_KEY  pinned verifier public key            (required)
#   TS_URL        transparency service for the call     (required)
#   TS_KEY        pinned transparency service key       (required)
#   HOST_ID       this host's id as enrolled            (required)
#   TCTI          TPM holding the statement key (default: TPM_STATE's swtpm, else device:/dev/tpmrm0)
#   SYMBOL        default INTC
#   QUOTE_PORT    use a quote service already listening on 127.0.0.1:QUOTE_PORT instead of
#                 starting examples/stock-price/quote_service.py on a free port
#   WORK          scratch directory (default: a new temp dir, removed at the end unless KEEP=1)
#
# Inside `make demo` (examples/demo.sh sets DEMO_DIR, DEMO_OUT, TPM_STATE, SLUICE, TS_URL, TS_KEY,
# VERIFIER_KEY, HOST_ID) the step runs on the host with what the guest left: RUN_DIR is DEMO_OUT,
# the guest's TPM state is started with swtpm/start.sh for the statement key, and -- the guest's
# credentials never leave the guest -- the verifier's copy of the released credential
# (DEMO_DIR/world/release/stock-quote-token) stands in for it. That shortcut exists only in this
# demo script. The tool is stock_price and the credential it presents is stock-quote-token, as in
# stock_price.json; the verdict must allow that tool and the policy release that credential
# (policy-fragment.json; tests/boot/lib-boot.sh writes such a policy).
# Exit status 0 when the price came back with a receipt that verifies.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$top/$BUILD ;; esac
SLUICE=${SLUICE:-$BUILD/sluice}
RUN_DIR=${RUN_DIR:-${DEMO_OUT:-/run/sluice}}
CRED_DIR=${CRED_DIR:-/run/credentials/@initrd}
TOOL=stock_price
CRED_NAME=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["credential"])' "$here/stock_price.json") ||
	exit 1
SYMBOL=${SYMBOL:-INTC}
for v in VERIFIER_KEY TS_URL TS_KEY HOST_ID; do
	[ -n "${!v:-}" ] || { echo "demo-step: $v is required (see the header of $0)" >&2; exit 2; }
done
WORK=${WORK:-$(mktemp -d /tmp/sluice-stock.XXXXXX)}
mkdir -p "$WORK/tools.d"
qpid='' tpmdir=''
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	[ -n "$tpmdir" ] && "$top/swtpm/stop.sh" "$tpmdir" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '  %s\n' "$*"; }

echo "== LLM tool access: stock_price through the sluice gateway"

# The TPM with the statement key: TCTI, or the guest's TPM state (demo), else the local TPM.
if [ -z "${TCTI:-}" ] && [ -n "${TPM_STATE:-}" ]; then
	d=$(dirname "$TPM_STATE")
	if [ -e "$d/swtpm.pid" ] && kill -0 "$(cat "$d/swtpm.pid")" 2>/dev/null && [ -s "$d/tcti" ]; then
		TCTI=$(cat "$d/tcti")
	else
		TCTI=$("$top/swtpm/start.sh" "$d") || { echo "demo-step: cannot start swtpm on $d" >&2; exit 1; }
		tpmdir=$d
	fi
	say "TPM: the guest's TPM state $TPM_STATE ($TCTI)"
fi
TCTI=${TCTI:-device:/dev/tpmrm0}

# The released credential the tool presents.
if [ ! -r "$CRED_DIR/$CRED_NAME" ] && [ -n "${DEMO_DIR:-}" ] && [ -r "$DEMO_DIR/world/release/$CRED_NAME" ]; then
	mkdir -p "$WORK/cred"
	cp "$DEMO_DIR/world/release/$CRED_NAME" "$WORK/cred/$CRED_NAME"
	chmod 0400 "$WORK/cred/$CRED_NAME"
	CRED_DIR=$WORK/cred
	say "credential: '$CRED_NAME' was released into the guest; the host uses the verifier's copy (demo only)"
fi
[ -r "$CRED_DIR/$CRED_NAME" ] || { echo "demo-step: no released credential $CRED_DIR/$CRED_NAME" >&2; exit 1; }

if [ -z "${QUOTE_PORT:-}" ]; then
	QUOTE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	python3 "$here/quote_service.py" --port "$QUOTE_PORT" --csv "$here/prices.csv" \
		--token-file "$CRED_DIR/$CRED_NAME" 2>"$WORK/quote.log" &
	qpid=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$QUOTE_PORT") 2>/dev/null && break; sleep 0.05; done
	say "quote service on 127.0.0.1:$QUOTE_PORT (demands the released credential $CRED_NAME)"
fi
python3 -c '
import json, sys
src, dst, port = sys.argv[1:]
d = json.load(open(src))
d["http"]["url"] = d["http"]["url"].replace("127.0.0.1:8931", "127.0.0.1:" + port)
json.dump(d, open(dst, "w"), indent=1)
' "$here/stock_price.json" "$WORK/tools.d/stock_price.json" "$QUOTE_PORT" || exit 1

opts=(--tools-dir "$WORK/tools.d" --run-dir "$RUN_DIR" --cred-dir "$CRED_DIR" --verifier-key "$VERIFIER_KEY"
	--ts-key "$TS_KEY" --ts "$TS_URL" --host-id "$HOST_ID" --tcti "$TCTI" --journal "$WORK/tools.journal"
	--config /dev/null)
say "gateway: $("$SLUICE" tools status "${opts[@]}" 2>&1)"

# One MCP session over stdio, as an LLM runtime would drive it.
printf '%s\n' \
	'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"demo","version":"1"}}}' \
	'{"jsonrpc":"2.0","method":"notifications/initialized"}' \
	'{"jsonrpc":"2.0","id":1,"method":"tools/list"}' \
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$TOOL\",\"arguments\":{\"symbol\":\"$SYMBOL\"}}}" |
	timeout 60 "$SLUICE" tools serve "${opts[@]}" >"$WORK/session.jsonl" 2>"$WORK/gateway.log"

python3 -c '
import base64, json, sys
work, tool = sys.argv[1], sys.argv[2]
ans = {}
for line in open(work + "/session.jsonl"):
    r = json.loads(line)
    ans[r.get("id")] = r
tools = [t["name"] for t in ans.get(1, {}).get("result", {}).get("tools", [])]
print("  tools/list: %s" % (", ".join(tools) or "(none: the gateway is locked)"))
r = ans.get(2, {})
if "error" in r:
    e = r["error"]
    print("  tools/call %s refused: %s (%s)" % (tool, e["message"], e.get("data", {}).get("reason", "")))
    sys.exit(1)
res = r["result"]
text = res["content"][0]["text"]
if res.get("isError"):
    print("  tools/call %s failed: %s" % (tool, text))
    sys.exit(1)
q = json.loads(text)
meta = res["_meta"]
print("  tools/call %s {\"symbol\": \"%s\"}" % (tool, q["symbol"]))
print("  price: %s %s %s (as of %s)" % (q["symbol"], q["price"], q.get("currency", ""), q.get("as_of", "")))
rcpt = base64.b64decode(meta["sluice/receipt"])
print("  receipt: entry %s, %d bytes, base64 %s..." % (meta["sluice/entryId"], len(rcpt), meta["sluice/receipt"][:48]))
open(work + "/call.receipt", "wb").write(rcpt)
open(work + "/call.statement", "wb").write(base64.b64decode(meta["sluice/statement"]))
' "$WORK" "$TOOL" || { sed 's/^/  gateway: /' "$WORK/gateway.log" >&2; exit 1; }

if "$SLUICE" receipt verify --statement "$WORK/call.statement" --receipt "$WORK/call.receipt" --keyset "$TS_KEY" >/dev/null 2>&1; then
	say "sluice receipt verify: the call's receipt verifies under the pinned transparency service key"
else
	say "sluice receipt verify: FAILED"
	exit 1
fi
say "journal (sluice tools audit):"
"$SLUICE" tools audit --journal "$WORK/tools.journal" --ts-key "$TS_KEY" --config /dev/null | sed 's/^/    /'

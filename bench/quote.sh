#!/usr/bin/env bash
# bench/quote.sh: TPM quote and quote verification, sluice vs tpm2-tools, one swtpm, one run.
#   quote:   sluice's in-process loop (sluice quote --repeat N: ECC P-256 AK, PCR read-back
#            included) vs tpm2_quote per invocation (process start + context + quote)
#   verify:  sluice quote verify vs tpm2_checkquote, per invocation, same quote
# Prints medians and ratios. Env: BUILD (default build), N (default 200 in-process quotes),
# M (default 20 CLI invocations each). Figures are noisy on a loaded machine: compare ratios.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SLUICE=$BUILD/sluice
N=${N:-200}
M=${M:-20}
for t in swtpm tpm2_quote tpm2_checkquote python3; do
	command -v $t >/dev/null || { echo "bench/quote.sh: $t missing" >&2; exit 1; }
done
[ -x "$SLUICE" ] || { echo "bench/quote.sh: $SLUICE missing (make all)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sluice-bench-quote.XXXXXX)
trap 'swtpm/stop.sh "$tmp/tpm" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
T=$(swtpm/start.sh "$tmp/tpm")
NONCE=$(openssl rand -hex 20)
SEL=sha256:0,1,2,3,4,5,6,7,15

# the AK exists before anything is timed
"$SLUICE" quote --tcti "$T" --nonce "$NONCE" --pcrs "$SEL" --out "$tmp/q" >/dev/null

# median in ms of M runs of a command
median_ms() {
	python3 - "$M" "$@" <<'PY'
import subprocess, sys, time
m = int(sys.argv[1]); cmd = sys.argv[2:]
ts = []
for _ in range(m):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append((time.perf_counter() - t0) * 1e3)
    if r.returncode != 0:
        print("FAIL", " ".join(cmd), file=sys.stderr); sys.exit(1)
ts.sort(); print("%.3f" % ts[len(ts) // 2])
PY
}

inproc=$("$SLUICE" quote --tcti "$T" --nonce "$NONCE" --pcrs "$SEL" --out "$tmp/q" --repeat "$N" | awk '{print $4}')
sluice_cli=$(median_ms "$SLUICE" quote --tcti "$T" --nonce "$NONCE" --pcrs "$SEL" --out "$tmp/q")
tools_quote=$(TPM2TOOLS_TCTI=$T median_ms tpm2_quote -T "$T" -c 0x81010002 -l "$SEL" -q "$NONCE" -m "$tmp/t.msg" \
	-s "$tmp/t.sig" -o "$tmp/t.pcrs" -g sha256)
ours_verify=$(median_ms "$SLUICE" quote verify --in "$tmp/q" --nonce "$NONCE")
ours_verify_inproc=$("$SLUICE" quote verify --in "$tmp/q" --nonce "$NONCE" --repeat "$N" | awk '/^verifications/{print $4}')
sluice_version=$(median_ms "$SLUICE" --version)
tools_verify=$(median_ms tpm2_checkquote -u "$tmp/q/ak.pub.pem" -m "$tmp/q/quote.msg" -s "$tmp/q/quote.sig" \
	-f "$tmp/q/quote.pcrs" -g sha256 -q "$NONCE")

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.1fx' % (a/b if b>0 else 0))" "$1" "$2"; }
printf '%-48s %10s\n' "operation (median)" "ms"
printf '%-48s %10s\n' "sluice quote, in-process loop (N=$N)" "$inproc"
printf '%-48s %10s\n' "sluice quote, one process per quote (M=$M)" "$sluice_cli"
printf '%-48s %10s\n' "tpm2_quote, one process per quote (M=$M)" "$tools_quote"
printf '%-48s %10s\n' "sluice quote verify, in-process (N=$N, mean)" "$ours_verify_inproc"
printf '%-48s %10s\n' "sluice quote verify, one process (M=$M)" "$ours_verify"
printf '%-48s %10s\n' "sluice --version (process start only, M=$M)" "$sluice_version"
printf '%-48s %10s\n' "tpm2_checkquote (M=$M)" "$tools_verify"
echo "ratio quote: tpm2_quote / sluice in-process      $(ratio "$tools_quote" "$inproc")"
echo "ratio quote: tpm2_quote / sluice quote CLI       $(ratio "$tools_quote" "$sluice_cli")"
echo "ratio verify: tpm2_checkquote / sluice in-process $(ratio "$tools_verify" "$ours_verify_inproc")"
echo "ratio verify: tpm2_checkquote / sluice verify CLI $(ratio "$tools_verify" "$ours_verify")"
echo "(one-process sluice figures include its start-up (it links every library of the agent) and, for quote, six fsynced output files)"

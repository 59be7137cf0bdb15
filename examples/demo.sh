#!/usr/bin/env bash
# make demo: the whole sluice story on one machine, in QEMU, in about two minutes.
#   1. a TPM (swtpm with EK certificates from a local CA), sluice-ts and sluice-verifier on 127.0.0.1
#   2. enrol the TPM with the verifier; measure the root image -> reference value -> policy
#   3. boot the good image: the initramfs gate measures, quotes, registers, gets an affirming
#      verdict, releases the credential and switches root
#   4. boot the same image with one file changed: refused, and `sluice measure --diff` says which
#   5. audit the evidence bundle and receipts offline with `sluice audit`
# The results stay in $BUILD/demo (DEMO_DIR). Services stop when the demo ends.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export KEEP_TMP=
. "$here/../tests/lib.sh"
. "$TOP/tests/boot/lib-boot.sh"
DEMO_DIR=${DEMO_DIR:-$BUILD/demo}
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
B=$(tput bold 2>/dev/null || true) N=$(tput sgr0 2>/dev/null || true)
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }
show_console() { # NAME: the sluice lines and the root's lines of a guest console
	tr -d '\r' <"$TMP/$1.console" | grep -E '^(sluice:|ROOT|CRED|AUDIT)' | sed 's/^/    /'
}
t_demo=$(date +%s)

for b in "$SLUICE" "$SLUICE_TS" "$SLUICE_VERIFIER"; do [ -x "$b" ] || die "missing $b: run make all"; done
say "Guest kernel (Debian's, unpacked once into $BUILD/kernel)"
boot_kernel || die "cannot download/unpack the kernel (apt-get download linux-image-amd64)"
echo "    $VMLINUZ"

say "TPM, transparency service, verifier; enrol this TPM"
W=$DEMO_DIR/world
W_CRED=stock-quote-token # the credential examples/stock-price/stock_price.json presents
boot_world_up "$W" demo-host || die "could not start the services or enrol (see $W/*.log)"
echo "    swtpm state         $W_TPMSTATE (EK certificate from $W/tpm/ca)"
echo "    sluice-ts           http://127.0.0.1:$W_TSP   key $W_TSKEY"
echo "    sluice-verifier     http://127.0.0.1:$W_VP   key $W_VKEY"
echo "    enrolled            host 'demo-host' (AK + statement key persisted in the TPM)"

say "The root image, its reference value, the policy"
cat >"$TMP/rinit" <<'EOF'
#!/bin/sh
echo "ROOT: switched into the measured root; the released credential:"
c=/run/credentials/@initrd/stock-quote-token
[ -r $c ] && echo "CRED: $c (mode $(stat -c %a $c), $(wc -c <$c) bytes)"
echo "ROOT: /run/sluice holds: $(ls /run/sluice | tr '\n' ' ')"
echo "DEMO-OUT-BEGIN"; tar -C /run/sluice -cf - . | base64; echo "DEMO-OUT-END"
poweroff -f
EOF
boot_testroot "$TMP/root" "$TMP/rinit"
echo "an application the policy allows" >"$TMP/root/usr/bin/app"
"$SLUICE" measure --manifest "$DEMO_DIR/reference.manifest" "$TMP/root" >"$DEMO_DIR/reference.txt" || die "measure failed"
DIGEST=$(grep -o 'sha256:[0-9a-f]*' "$DEMO_DIR/reference.txt" | head -1)
boot_world_policy "$W" "$DIGEST"
boot_mkroot "$TMP/root" "$DEMO_DIR/root.img" 64M
cp -a "$TMP/root" "$TMP/tampered"
echo "a backdoor" >>"$TMP/tampered/usr/bin/app"
boot_mkroot "$TMP/tampered" "$DEMO_DIR/root-tampered.img" 64M
echo "    reference digest    $DIGEST  (sluice measure $TMP/root)"
echo "    policy              $W/policy.json (accepts that digest; releases '$W_CRED'; tools: stock_price)"

say "The initramfs: busybox, sluice, the pinned keys, /init"
boot_guest_conf "$W" "$DEMO_DIR/sluice.conf"
boot_initramfs "$DEMO_DIR/initrd.img" -s "$SLUICE" -c "$DEMO_DIR/sluice.conf" -V "$W_VKEY" -T "$W_TSKEY" ||
	die "mkinitramfs failed"
echo "    $DEMO_DIR/initrd.img ($(($(stat -c %s "$DEMO_DIR/initrd.img") / 1024)) KiB); config:"
grep -v '^#' "$DEMO_DIR/sluice.conf" | sed 's/^/      /'

say "Boot the good image (QEMU, SeaBIOS, TCG; the guest reaches only the two services)"
boot_qemu good -i "$DEMO_DIR/initrd.img" -r "$DEMO_DIR/root.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP"
show_console good
cp "$TMP/good.console" "$DEMO_DIR/good.console"
grep -q 'ROOT: switched' "$TMP/good.console" || die "the good image did not boot (console: $DEMO_DIR/good.console)"
mkdir -p "$DEMO_DIR/out"
sed -n '/DEMO-OUT-BEGIN/,/DEMO-OUT-END/p' "$TMP/good.console" | tr -d '\r' | grep -v DEMO-OUT | base64 -d |
	tar -C "$DEMO_DIR/out" -xf - || die "could not copy /run/sluice out of the guest"
printf '    (boot took %.1fs)\n' "$BOOT_SECONDS"

say "Boot the same image with one file changed"
boot_qemu tampered -i "$DEMO_DIR/initrd.img" -r "$DEMO_DIR/root-tampered.img" -t "$W_TPMSTATE" -p "$W_VP" -p "$W_TSP"
show_console tampered
cp "$TMP/tampered.console" "$DEMO_DIR/tampered.console"
grep -q 'ROOT: switched' "$TMP/tampered.console" && die "the tampered image booted"
echo "    which file? sluice measure --diff reference.manifest <tampered tree>:"
"$SLUICE" measure --diff "$DEMO_DIR/reference.manifest" "$TMP/tampered" | sed 's/^/      /'

say "Audit the good boot offline"
echo "    evidence bundle and receipts: $DEMO_DIR/out/"
ls -l "$DEMO_DIR/out" | tail -n +2 | sed 's/^/      /'
echo "    \$ sluice audit $DEMO_DIR/out/bundle.tar --ts-key $W_TSKEY --verifier-key $W_VKEY"
"$SLUICE" audit "$DEMO_DIR/out/bundle.tar" --ts-key "$W_TSKEY" --verifier-key "$W_VKEY" 2>&1 | sed 's/^/      /'

# ---- HOOK: the LLM tool-gateway step (examples/stock-price/, owned by the gateway engineer) ----
# Runs with the services still up. Environment: DEMO_DIR, DEMO_OUT (the guest's /run/sluice
# without credentials), SLUICE, VERIFIER_URL, TS_URL, VERIFIER_KEY, TS_KEY, TPM_STATE, HOST_ID.
if [ -x "$TOP/examples/stock-price/demo-step.sh" ] || [ -f "$TOP/examples/stock-price/demo-step.sh" ]; then
	say "LLM tool access (examples/stock-price/demo-step.sh)"
	DEMO_DIR=$DEMO_DIR DEMO_OUT=$DEMO_DIR/out SLUICE=$SLUICE VERIFIER_URL=http://127.0.0.1:$W_VP \
		TS_URL=http://127.0.0.1:$W_TSP VERIFIER_KEY=$W_VKEY TS_KEY=$W_TSKEY TPM_STATE=$W_TPMSTATE HOST_ID=$W_HOST \
		bash "$TOP/examples/stock-price/demo-step.sh" || echo "    (the tool-gateway step failed)"
fi
# ---- end of HOOK ----

say "Done in $(($(date +%s) - t_demo))s. Everything is in $DEMO_DIR (consoles, images, bundle, receipts)."

#!/usr/bin/env bash
# Real TCG event logs captured from QEMU boots (SeaBIOS and OVMF, tests/vectors/eventlog/):
# our replay equals the PCR values the guest read from sysfs and tpm2_eventlog's replay; the
# PC Client type checks pass on PCRs 0-7; truncated and corrupted logs fail cleanly; an event
# relabelled with another type still replays but fails the type check.
. "$(dirname "$0")/../lib.sh"
V=$TOP/tests/vectors/eventlog
command -v tpm2_eventlog >/dev/null || { fail tools "tpm2_eventlog missing"; finish; }

for fw in seabios ovmf; do
	log=$V/$fw.bin
	[ -s "$log" ] || { fail "vector_$fw" "$log missing (run tests/vectors/eventlog/capture.sh)"; continue; }
	# firmware PCRs only: 10 is IMA's, 11+ unused
	grep -E '^sha(1|256):[0-9] ' "$V/$fw.pcrs" >"$TMP/$fw.pcrs"
	check "replay_matches_sysfs_$fw" "$SLUICE" eventlog "$log" --expect "$TMP/$fw.pcrs"
	check "types_ok_$fw" "$SLUICE" eventlog "$log" --check-types sha1:0-7+sha256:0-7

	# our replay vs tpm2_eventlog's, for every PCR either reports
	"$SLUICE" eventlog "$log" --json >"$TMP/$fw.json" 2>/dev/null
	tpm2_eventlog "$log" >"$TMP/$fw.tools" 2>/dev/null
	if python3 - "$TMP/$fw.json" "$TMP/$fw.tools" <<'PY'
import json, re, sys
ours = json.load(open(sys.argv[1]))["pcrs"]
tools, bank, inpcrs = {}, None, False
for line in open(sys.argv[2]):
    if line.startswith("pcrs:"): inpcrs = True; continue
    if not inpcrs: continue
    m = re.match(r"^  (\w+):\s*$", line)
    if m: bank = m.group(1); tools[bank] = {}; continue
    m = re.match(r"^\s+(\d+)\s*:\s*0x([0-9a-fA-F]+)", line)
    if m and bank: tools[bank][m.group(1)] = m.group(2).lower()
assert tools, "no pcrs in tpm2_eventlog output"
n = 0
for b, vals in tools.items():
    for k, v in vals.items():
        assert ours[b][k] == v, (b, k, ours[b].get(k), v); n += 1
for b, vals in ours.items():
    for k, v in vals.items():
        assert tools[b][k] == v, (b, k); n += 1
print("# compared", n)
PY
	then ok "replay_matches_tpm2_eventlog_$fw"; else fail "replay_matches_tpm2_eventlog_$fw" "PCRs differ"; fi

	# truncations: every one fails (parse error or replay mismatch), none crashes
	size=$(stat -c %s "$log")
	bad=0
	for cut in 1 20 33 $((size / 3)) $((size / 2)) $((size - 40)) $((size - 1)); do
		head -c "$cut" "$log" >"$TMP/cut"
		"$SLUICE" eventlog "$TMP/cut" --expect "$TMP/$fw.pcrs" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 1 ] || { bad=1; echo "# cut at $cut: rc=$rc"; }
	done
	[ $bad = 0 ] && ok "truncated_fail_$fw" || fail "truncated_fail_$fw" "a truncated log did not fail cleanly"

	# corruptions: flipped bytes in the header, a size field, a digest
	python3 - "$TMP/$fw.json" "$log" "$TMP" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["events"]; b = open(sys.argv[2], "rb").read(); d = sys.argv[3]
def out(name, pos, x):
    m = bytearray(b); m[pos] ^= x; open(f"{d}/{name}", "wb").write(m)
out("c_header", 40, 0xff)                 # inside the Spec ID event
e = ev[3]; out("c_count", e["offset"] + 8, 0x10)   # digest count
out("c_digest", e["offset"] + 12 + 2 + 5, 0x01)   # a byte of the first digest
last = ev[-1]; out("c_size", len(b) - last["data_len"] - 2, 0x40)  # data size of the last event
# relabel an event with the same digest: under OVMF the kernel's
# EV_EFI_BOOT_SERVICES_APPLICATION becomes an EV_EFI_ACTION (a verifier reading actions by
# their text would skip it); under SeaBIOS PCR 4's EV_SEPARATOR becomes an EV_IPL (hiding
# where the pre-OS phase ended)
img = [x for x in ev if x["type"] == 0x80000003]
t = img[-1] if img else [x for x in ev if x["pcr"] == 4 and x["type"] == 4][0]
new = 0x80000007 if img else 0xd
m = bytearray(b)
m[t["offset"] + 4:t["offset"] + 8] = new.to_bytes(4, "little")
open(f"{d}/c_relabel", "wb").write(m)
PY
	for c in c_header c_count c_digest c_size; do
		"$SLUICE" eventlog "$TMP/$c" --expect "$TMP/$fw.pcrs" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 1 ] && ok "corrupt_${c#c_}_fails_$fw" || fail "corrupt_${c#c_}_fails_$fw" "rc=$rc"
	done
	"$SLUICE" eventlog "$TMP/c_relabel" --expect "$TMP/$fw.pcrs" >/dev/null 2>&1 &&
		ok "relabel_still_replays_$fw" || fail "relabel_still_replays_$fw" "replay changed"
	check_fails "relabel_caught_by_type_check_$fw" "$SLUICE" eventlog "$TMP/c_relabel" --check-types sha256:0-7
done
finish

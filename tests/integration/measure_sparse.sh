#!/usr/bin/env bash
# A sparse regular file larger than 4 GiB: the tree walk and a sparse tar (tar -S) give the same
# digest, the record carries the 64-bit size, and the content digest is the known SHA-256.
# Costs a few seconds of hashing (4 GiB of mostly holes), so it lives here, not in the unit tests.
. "$(dirname "$0")/../lib.sh"
R=$TMP/root
mkdir -p "$R/var/lib"
SIZE=$(( (4 << 30) + 65536 + 5 ))
f=$R/var/lib/disk.img
truncate -s $SIZE "$f"
printf 'head' | dd of="$f" conv=notrunc status=none
printf 'across-4GiB' | dd of="$f" bs=1 seek=$(( (4 << 30) - 5 )) conv=notrunc status=none
printf 'tail' | dd of="$f" bs=1 seek=$(( SIZE - 4 )) conv=notrunc status=none
echo small >"$R/var/lib/small"
# holes at both ends, data in the middle (the walker hashes holes without reading them)
g=$R/var/lib/mid.img
truncate -s $((3 << 20)) "$g"
printf 'middle' | dd of="$g" bs=1 seek=$((1 << 20)) conv=notrunc status=none

D=$("$SLUICE" measure --manifest "$TMP/m.cbor" "$R") || fail sparse_tree_measured "rc=$?"
tar -C "$R" -S -cf "$TMP/s.tar" .
DA=$("$SLUICE" measure --archive "$TMP/s.tar")
[ -n "$D" ] && [ "$D" = "$DA" ] && ok sparse_tree_equals_sparse_tar || fail sparse_tree_equals_sparse_tar "$D vs $DA"

"$SLUICE" measure --prove /var/lib/disk.img --manifest "$TMP/m.cbor" >"$TMP/p.json"
# The content is fixed, so its SHA-256 is too (openssl dgst -sha256 of the file; computing it
# here again would read 4 GiB once more).
want=f8e15570f4fe387789cb4d1f2b3868b3f7beb5779a63fb02f0938bf9d7a62095
/usr/bin/python3 - "$TMP/p.json" "$SIZE" "$want" <<'EOF' && ok sparse_record_size_and_digest || fail sparse_record_size_and_digest "record does not match"
import json, sys
r = bytes.fromhex(json.load(open(sys.argv[1]))["record"])
size = int(sys.argv[2])
# ... uint 1 (file), mode, uid 0, gid 0, size as a 9-byte uint64 head (0x1b), bstr(32) digest
assert b"\x1b" + size.to_bytes(8, "big") + b"\x58\x20" + bytes.fromhex(sys.argv[3]) == r[-(9 + 2 + 32):], r.hex()
EOF
"$SLUICE" measure --prove /var/lib/mid.img --manifest "$TMP/m.cbor" >"$TMP/p2.json"
/usr/bin/python3 - "$TMP/p2.json" "$(openssl dgst -sha256 -r "$g" | cut -d' ' -f1)" <<'EOF' && ok sparse_holes_at_both_ends || fail sparse_holes_at_both_ends "digest differs from openssl dgst"
import json, sys
r = bytes.fromhex(json.load(open(sys.argv[1]))["record"])
assert r[-32:] == bytes.fromhex(sys.argv[2]), r.hex()
EOF
check sparse_proof_verifies "$SLUICE" measure --verify-proof "$TMP/p.json" --digest "$D" --path /var/lib/disk.img
finish

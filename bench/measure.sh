#!/usr/bin/env bash
# Benchmark: sluice measure against the usual shell pipelines, in the same run, warm cache.
#
#   bench/measure.sh            (make bench runs it; BUILD selects the build dir)
#
# 1. A synthetic tree of 20,000 files with log-uniform sizes totalling 1 GiB, cached in
#    build/bench-cache/ between runs. Timed (best of REPS, default 3):
#      sluice measure --no-default-excludes TREE
#      find TREE -type f -print0 | xargs -0 -P2 -n 1000 openssl dgst -sha256
#      find TREE -type f -print0 | xargs -0 -P2 -n 1000 sha256sum
#    and printed as MB/s, files/s, CPU-s/GiB and the ratios sluice / peer; then, for scale, the
#    floor of any read-based hasher (bench/hashfloor.c: open, 64 KiB reads, EVP SHA-256 on
#    nproc threads over the same file list, nothing else; and its mmap variant) timed in the same loop, and the SHA-256
#    ceiling of the machine (openssl speed on one CPU, times the CPUs).
# 2. /usr in place (read-only, one file system): files/s and peak RSS (GNU time -v).
# Targets (2-core machine): >= 1.35x the openssl pipeline; >= 30,000 files/s and <= 64 MiB
# peak RSS on /usr. Figures on a shared machine are noisy; compare the ratios.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
SLUICE=$BUILD/sluice
REPS=${REPS:-3}
FILES=${BENCH_FILES:-20000}
TOTAL=${BENCH_BYTES:-1073741824}
CACHE=$TOP/build/bench-cache
TREE=$CACHE/tree-$FILES-$TOTAL
USR=${BENCH_USR:-/usr}

for t in openssl sha256sum xargs find /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench/measure.sh: missing $t (make deps)" >&2; exit 1; }
done
[ -x "$SLUICE" ] || { echo "bench/measure.sh: build $SLUICE first (make)" >&2; exit 1; }

# ---- the synthetic tree (deterministic, cached) ----
if [ ! -e "$TREE/.complete" ]; then
	echo "building $TREE ($FILES files, $TOTAL bytes; cached for later runs)"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	/usr/bin/python3 - "$TREE" "$FILES" "$TOTAL" <<'EOF'
import math, os, random, sys
root, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(20261129)
# log-uniform sizes in [1 B, 1 MiB], scaled so that they sum to total
raw = [math.exp(rnd.uniform(0, math.log(1 << 20))) for _ in range(n)]
scale = total / sum(raw)
sizes = [max(0, int(s * scale)) for s in raw]
sizes[-1] += total - sum(sizes)
block = rnd.randbytes(4 << 20)
for i, size in enumerate(sizes):
    d = os.path.join(root, "d%03d" % (i % 200), "e%02d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        off = (i * 7919) % (len(block) - 1)
        while size > 0:
            chunk = block[off:off + min(size, len(block) - off)]
            f.write(chunk)
            size -= len(chunk)
            off = 0
EOF
	touch "$TREE/.complete"
fi
nfiles=$(find "$TREE" -type f ! -name .complete | wc -l)
nbytes=$(find "$TREE" -type f ! -name .complete -printf '%s\n' | awk '{s += $1} END {print s}')

# ---- timing: the three runs interleaved, best of REPS each (after one warm-up each), so that
# load from elsewhere spreads over all three instead of hitting one; CPU seconds are printed
# too, as they depend less on that load ----
run_sluice() { "$SLUICE" measure --no-default-excludes "$TREE"; }
run_openssl() { find "$TREE" -type f ! -name .complete -print0 | xargs -0 -P2 -n 1000 openssl dgst -sha256; }
run_sha256sum() { find "$TREE" -type f ! -name .complete -print0 | xargs -0 -P2 -n 1000 sha256sum; }
run_floor() { find "$TREE" -type f ! -name .complete -print0 | "$FLOOR" "$(nproc)"; }
run_floormap() { find "$TREE" -type f ! -name .complete -print0 | "$FLOOR" "$(nproc)" mmap; }
# wall seconds and CPU seconds (user + sys, children included) of one run
timed() { /usr/bin/time -f '%e %U %S' -o "$CACHE/run.time" bash -c "$1" >/dev/null 2>&1; awk '{ print $1, $2 + $3 }' "$CACHE/run.time"; }
export -f run_sluice run_openssl run_sha256sum run_floor run_floormap
export SLUICE TREE FLOOR
best() { # NAME: keep the run with the least wall time in W[NAME], its CPU time in C[NAME]
	local r; r=$(timed "run_$1")
	if [ -z "${W[$1]:-}" ] || [ "$(echo "${r% *} < ${W[$1]}" | bc -l)" = 1 ]; then W[$1]=${r% *}; C[$1]=${r#* }; fi
}
declare -A W C
FLOOR=$CACHE/hashfloor
if [ ! -x "$FLOOR" ] || [ "$TOP/bench/hashfloor.c" -nt "$FLOOR" ]; then
	cc -O2 -Wall -Werror -o "$FLOOR" "$TOP/bench/hashfloor.c" -lcrypto -lpthread
fi

cat "$TREE"/*/*/* >/dev/null # warm the page cache
echo "synthetic tree: $nfiles files, $((nbytes / 1048576)) MiB, warm cache, best of $REPS; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
run_sluice >/dev/null 2>&1; run_openssl >/dev/null 2>&1; run_sha256sum >/dev/null 2>&1
run_floor >/dev/null && run_floormap >/dev/null || { echo "bench/measure.sh: hashfloor failed" >&2; exit 1; }
for i in $(seq 1 "$REPS"); do best sluice; best openssl; best sha256sum; best floor; best floormap; done
gib=$(echo "$nbytes / 1073741824" | bc -l)
row() { printf '  %-32s %6.3f s %6.0f MB/s %7.0f files/s   CPU %5.2f s = %4.2f CPU-s/GiB\n' "$1" "${W[$2]}" \
	"$(echo "$nbytes / ${W[$2]} / 1000000" | bc -l)" "$(echo "$nfiles / ${W[$2]}" | bc -l)" "${C[$2]}" \
	"$(echo "${C[$2]} / $gib" | bc -l)"; }
row "sluice measure" sluice
row "xargs -P2 openssl dgst -sha256" openssl
row "xargs -P2 sha256sum" sha256sum
printf '  ratio sluice / openssl pipeline:   %.2fx wall (target >= 1.35x), %.2fx CPU\n' \
	"$(echo "${W[openssl]} / ${W[sluice]}" | bc -l)" "$(echo "${C[openssl]} / ${C[sluice]}" | bc -l)"
printf '  ratio sluice / sha256sum pipeline: %.2fx wall, %.2fx CPU\n' \
	"$(echo "${W[sha256sum]} / ${W[sluice]}" | bc -l)" "$(echo "${C[sha256sum]} / ${C[sluice]}" | bc -l)"
# The floor: what opening, reading and hashing these files costs with nothing else around it.
row "floor: open+read+EVP loop" floor
row "floor, mmap from 256 KiB" floormap
printf '  ratio floor / openssl pipeline:    %.2fx wall, %.2fx CPU (a minimal open+read+hash loop, for scale); sluice at %.0f%% of the floor'"'"'s speed\n' \
	"$(echo "${W[openssl]} / ${W[floor]}" | bc -l)" "$(echo "${C[openssl]} / ${C[floor]}" | bc -l)" \
	"$(echo "100 * ${W[floor]} / ${W[sluice]}" | bc -l)"
printf '  ratio mmap floor / openssl:        %.2fx wall, %.2fx CPU (no copy out of the page cache for large files)\n' \
	"$(echo "${W[openssl]} / ${W[floormap]}" | bc -l)" "$(echo "${C[openssl]} / ${C[floormap]}" | bc -l)"
# The SHA-256 ceiling of this machine, measured now: OpenSSL hashing 64 KiB blocks from cache
# on one CPU (openssl speed divides by the CPU time it got, so other load hardly moves it),
# times the CPUs. Its CPU-s/GiB is what hashing alone costs; reading the files (the copy out of
# the page cache) and opening them come on top for any tool.
ncpu=$(nproc)
kbs=$(openssl speed -evp sha256 -bytes 65536 -seconds 1 2>/dev/null | awk '$1 == "sha256" {print $2}' | tr -d k)
if [ -n "$kbs" ]; then
	printf '  SHA-256 ceiling: %.0f MB/s per CPU (openssl speed), %.0f MB/s for %d = %.2f CPU-s/GiB; sluice at %.0f%% of it\n' \
		"$(echo "$kbs / 1000" | bc -l)" "$(echo "$ncpu * $kbs / 1000" | bc -l)" "$ncpu" \
		"$(echo "1073741824 / ($kbs * 1000)" | bc -l)" "$(echo "100 * ($nbytes / ${W[sluice]}) / ($ncpu * $kbs * 1000)" | bc -l)"
fi

# ---- /usr in place ----
if [ -d "$USR" ]; then
	ufiles=$(find "$USR" -xdev -type f | wc -l)
	"$SLUICE" measure "$USR" >/dev/null 2>&1 || true # warm
	/usr/bin/time -v -o "$CACHE/usr.time" "$SLUICE" measure --json "$USR" >"$CACHE/usr.json" 2>/dev/null || {
		echo "  $USR: sluice measure failed (a file changed or is unreadable?)"; exit 1; }
	wall=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$CACHE/usr.json")
	ubytes=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$CACHE/usr.json")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$CACHE/usr.time")
	printf '  %s: %d files, %d MiB in %.2f s: %.0f files/s (target >= 30000), %.0f MB/s, peak RSS %.1f MiB (target <= 64)\n' \
		"$USR" "$ufiles" "$((ubytes / 1048576))" "$wall" "$(echo "$ufiles / $wall" | bc -l)" \
		"$(echo "$ubytes / $wall / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
fi

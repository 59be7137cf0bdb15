#!/usr/bin/env bash
# sluice test runner.
#
#   tests/run.sh [SUITE...]        SUITE: unit fuzz integration boot (default: all four)
#
# Environment: BUILD (build dir, default build), T (only tests whose name contains T),
# TEST_TIMEOUT (seconds per test, default 600), SLUICE_SUITE_LABEL (prefix for the summary),
# SUMMARY_FILE (append "PASSED FAILED" there, so make check can add up several runs).
#
# Each test is a program: a unit test binary, a fuzz replay binary, or a script in
# tests/integration or tests/boot. A test reports sub-cases with TAP-like lines on stdout:
#   ok NAME            one passed case
#   not ok NAME: why   one failed case
# A test that prints no such line counts as one case, passed iff it exits 0. A test that
# exits non-zero without printing "not ok" adds one failure. At the end one line:
#   N passed, N failed
# and the exit status is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=${T:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
LABEL=${SLUICE_SUITE_LABEL:-}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit fuzz integration boot)

pass=0 fail=0
failed_names=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"

run_one() { # name, command...
	local name=$1; shift
	local log="$logdir/${name//\//_}.log"
	local start end rc okc nokc
	start=$(date +%s.%N)
	timeout --kill-after=10 "$TEST_TIMEOUT" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	end=$(date +%s.%N)
	okc=$(grep -c '^ok ' "$log")
	nokc=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$nokc" -eq 0 ]; then nokc=1; fi
	if [ "$okc" -eq 0 ] && [ "$nokc" -eq 0 ]; then okc=1; fi
	pass=$((pass + okc)); fail=$((fail + nokc))
	if [ "$nokc" -gt 0 ]; then
		failed_names+=("$name")
		printf 'FAIL %-44s %3d ok %3d failed  rc=%d  %.1fs\n' "$name" "$okc" "$nokc" "$rc" "$(echo "$end - $start" | bc)"
		[ "$rc" -eq 124 ] && echo "     (timed out after ${TEST_TIMEOUT}s)"
		grep '^not ok ' "$log" | head -20 | sed 's/^/     /'
		echo "     --- last lines of $log:"
		tail -n 30 "$log" | sed 's/^/     | /'
	else
		printf 'PASS %-44s %3d ok  %.1fs\n' "$name" "$okc" "$(echo "$end - $start" | bc)"
	fi
}

matches() { [ -z "$T" ] || [[ "$1" == *"$T"* ]]; }

for suite in "${suites[@]}"; do
	case "$suite" in
	unit)
		for b in "$BUILD"/tests/unit/*; do
			[ -x "$b" ] && [ -f "$b" ] || continue
			n=unit/$(basename "$b"); matches "$n" || continue
			run_one "$n" "$b"
		done ;;
	fuzz)
		for b in "$BUILD"/tests/fuzz/fuzz_*; do
			[ -x "$b" ] && [ -f "$b" ] || continue
			case "$b" in *.o|*.d) continue ;; esac
			n=$(basename "$b"); matches "fuzz/$n" || continue
			corpus=tests/fuzz/corpus/$n
			if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
				echo "not ok fuzz/$n: no corpus in $corpus" >"$logdir/fuzz_$n.log"
				pass=$pass; fail=$((fail + 1)); failed_names+=("fuzz/$n")
				echo "FAIL fuzz/$n: empty corpus $corpus"; continue
			fi
			run_one "fuzz/$n" "$b" "$corpus"
		done ;;
	integration|boot)
		for s in tests/"$suite"/*.sh; do
			[ -f "$s" ] || continue
			case "$(basename "$s")" in lib*) continue ;; esac # sourced helpers, not tests
			n=$suite/$(basename "$s" .sh); matches "$n" || continue
			run_one "$n" env BUILD="$BUILD" bash "$s"
		done ;;
	*) echo "run.sh: unknown suite '$suite'" >&2; exit 2 ;;
	esac
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "${LABEL:+$LABEL: }$pass passed, $fail failed"
[ -n "${SUMMARY_FILE:-}" ] && echo "$pass $fail" >>"$SUMMARY_FILE"
[ "$fail" -eq 0 ]

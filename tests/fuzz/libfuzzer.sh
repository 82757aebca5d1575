#!/usr/bin/env bash
# libfuzzer.sh -- build the mmap fuzzer (libFuzzer + ASan + UBSan) and run it.
#
#   tests/fuzz/libfuzzer.sh                 fuzz for FUZZ_SECONDS on a copy of
#                                           tests/fuzz/corpus
#   tests/fuzz/libfuzzer.sh crash-file...   build, then run just these inputs
#                                           (a replay; MMAP_FUZZ_TRACE=1 prints
#                                           every Tcl command they run)
#
# Exits non-zero on a crash, an abort (a broken invariant), a sanitizer report,
# a leak or a timeout; the input that did it is kept and its path printed.
#
# Debian 12 packages it needs:
#   apt-get install --no-install-recommends clang-14 libclang-rt-14-dev tcl8.6-dev
# (tcl-dev works in place of tcl8.6-dev; add `clang` for a plain clang++.)
# (libclang-rt-14-dev holds the fuzzer and sanitizer runtimes; clang-14 only
# recommends it, so installs without recommends lack it and fail to link.)
#
# Environment (defaults in brackets):
#   SRCDIR        the mmap source tree [two levels above this script]
#   BUILDDIR      where the fuzzer is built [${TMPDIR:-/tmp}/mmap-fuzz-build]
#   CXX           [clang++, else clang++-14]
#   TCL_INCLUDE   [/usr/include/tcl8.6]
#   TCL_LIB       [-ltcl8.6]
#   FUZZ_SECONDS  how long to fuzz [60]
#   FUZZ_LOG_SECONDS  how long to fuzz the log format layer afterwards
#                 (fuzz_log.cpp, on its own corpus) [20]; 0 skips it
#   FUZZ_MAX_LEN  largest input in bytes [1024]
#   FUZZ_FLAGS    more libFuzzer flags (they win over the defaults above)
#   FUZZ_CORPUS_OUT  copy the grown corpus to this directory
#   FUZZ_COVERAGE=1  also print line coverage of generic/ and mmapUnix.h by the
#                 corpus (needs llvm-profdata and llvm-cov: package llvm-14)
#   MMAP_FUZZ_SHRINK=0  leave out the "shrink the file" operations
#   MMAP_FUZZ_STATS=0   do not print the harness's operation counters
#   MMAP_FUZZ_TOLERATE  documented behaviour to accept [partial-tell]; set
#                       it empty (MMAP_FUZZ_TOLERATE=) to hold the channel to
#                       the stricter rule that a failed command never moves
#                       [tell] (which Tcl's channel layer cannot keep)

# Started as `sh libfuzzer.sh` (dash has no arrays or pipefail): go to bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "${SRCDIR:-$here/../..}" && pwd)
BUILDDIR=${BUILDDIR:-${TMPDIR:-/tmp}/mmap-fuzz-build}
if [ -z "${CXX:-}" ]; then
    if command -v clang++ >/dev/null 2>&1; then CXX=clang++; else CXX=clang++-14; fi
fi
TCL_INCLUDE=${TCL_INCLUDE:-/usr/include/tcl8.6}
TCL_LIB=${TCL_LIB:--ltcl8.6}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-1024}
export MMAP_FUZZ_STATS=${MMAP_FUZZ_STATS:-1}
# Documented behaviour accepted unless asked otherwise; MMAP_FUZZ_TOLERATE=
# (set but empty) makes the harness strict. See fuzz_mmap.cpp.
export MMAP_FUZZ_TOLERATE=${MMAP_FUZZ_TOLERATE-partial-tell}

# ---------------------------------------------------------------------------
# Build. mmap.cpp gets the same sanitizers plus the fuzzer's coverage
# instrumentation (fuzzer-no-link) and is linked in directly, without Tcl
# stubs, so the fuzzer needs no shared library of the package. UBSan aborts on
# its first report (-fno-sanitize-recover), or libFuzzer would not notice it.
# ---------------------------------------------------------------------------
mkdir -p "$BUILDDIR"
common=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
        -I"$TCL_INCLUDE")
set -x
"$CXX" "${common[@]}" -fsanitize=fuzzer-no-link,address,undefined \
    -I"$SRCDIR/unix" -DPACKAGE_VERSION=\"1.0\" \
    -c "$SRCDIR/generic/mmap.cpp" -o "$BUILDDIR/mmap.o"
"$CXX" "${common[@]}" -fsanitize=fuzzer,address,undefined \
    -c "$here/fuzz_mmap.cpp" -o "$BUILDDIR/fuzz_mmap.o"
# shellcheck disable=SC2086  # TCL_LIB may hold several words
"$CXX" -fsanitize=fuzzer,address,undefined \
    "$BUILDDIR/fuzz_mmap.o" "$BUILDDIR/mmap.o" $TCL_LIB -o "$BUILDDIR/fuzz_mmap"
# The log format layer alone (generic/mmapLog.h; no Tcl).
"$CXX" "${common[@]}" -fsanitize=fuzzer,address,undefined -I"$SRCDIR/unix" \
    "$here/fuzz_log.cpp" -o "$BUILDDIR/fuzz_log"
{ set +x; } 2>/dev/null

# Each run's scratch space: the corpus copy, crash files, the log, and the
# harness's own temp dir (TMPDIR), so even an aborted run leaves nothing else.
work=$(mktemp -d "${TMPDIR:-/tmp}/mmap-fuzz-run.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
# The mapped files go to memory when possible: on a disk every msync of a
# shared mapping (close, -sync) waits for the device, which costs most of
# the run's time.
if [ -z "${MMAP_FUZZ_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm=$(mktemp -d /dev/shm/mmap-fuzz.XXXXXX)
    export MMAP_FUZZ_TMPDIR=$shm
fi
keep_work=0
cleanup() {
    if [ -n "${shm:-}" ]; then rm -rf "$shm"; fi
    if [ "$keep_work" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# Sanitizer settings: abort on the first error so libFuzzer saves the input;
# the harness's fault guard checks need SIGBUS to reach the package's handler
# (allow_user_segv_handler is the default, stated for the record).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:allow_user_segv_handler=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

common_run=(-timeout=20 -rss_limit_mb=2048 -max_len="$FUZZ_MAX_LEN"
            -artifact_prefix="$work/artifacts/")

# A report in the log fails the run even if the exit status did not.
reports='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken|SUMMARY: '

if [ "$#" -gt 0 ]; then
    # Replay: run each given input once, with the full output on the terminal.
    set +e
    TMPDIR="$work/tmp" "$BUILDDIR/fuzz_mmap" "${common_run[@]}" "$@" 2>&1 \
        | tee "$work/replay.log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ] || grep -Eq "$reports" "$work/replay.log"; then
        echo "libfuzzer.sh: replay FAILED (exit status $status)"
        exit 1
    fi
    echo "libfuzzer.sh: replay OK ($# input(s))"
    exit 0
fi

cp "$here"/corpus/* "$work/corpus/"
# -len_control=0: inputs may use all of -max_len from the start; longer
# operation sequences reach more states than libFuzzer's slow ramp allows
# in a one-minute run. FUZZ_FLAGS come last, so they can override it.
fuzz_args=("${common_run[@]}" -max_total_time="$FUZZ_SECONDS" -len_control=0
           -print_final_stats=1)
echo "+ $BUILDDIR/fuzz_mmap ${fuzz_args[*]} ${FUZZ_FLAGS:-} $work/corpus" \
     " (log: $work/fuzz.log; MMAP_FUZZ_SHRINK=${MMAP_FUZZ_SHRINK:-1}" \
     "MMAP_FUZZ_TOLERATE=${MMAP_FUZZ_TOLERATE:-})"
start=$(date +%s)
set +e
# shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
(cd "$work" && TMPDIR="$work/tmp" "$BUILDDIR/fuzz_mmap" "${fuzz_args[@]}" \
    ${FUZZ_FLAGS:-} "$work/corpus" >"$work/fuzz.log" 2>&1)
status=$?
set -e
elapsed=$(( $(date +%s) - start ))

# The numbers: libFuzzer's last status line and its final stats.
last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1 || true)
stat() { sed -n "s/^stat::$1: *//p" "$work/fuzz.log" | tail -n 1; }
execs=$(stat number_of_executed_units)
speed=$(stat average_exec_per_sec)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
grep -E '^fuzz_mmap' "$work/fuzz.log" || true

# Stop the script if a fuzzer run failed: show the report, keep the inputs.
#   check_run what log replay-hint
check_run() {
    if [ "$status" -ne 0 ] || grep -Eq "$reports" "$2"; then
        keep_work=1
        grep -E -B2 -A30 "$reports" "$2" | head -n 80 || tail -n 40 "$2"
        echo "libfuzzer.sh: $1 FAILED (exit status $status) after ${elapsed}s;" \
             "log $2; inputs: $(find "$work/artifacts" -type f | tr '\n' ' ')"
        echo "  replay with: $3"
        exit 1
    fi
}
check_run fuzz_mmap "$work/fuzz.log" "$0 <input>   (MMAP_FUZZ_TRACE=1 shows each Tcl command)"

# Optional: keep the grown corpus (never written into the source tree).
if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
    mkdir -p "$FUZZ_CORPUS_OUT"
    cp "$work"/corpus/* "$FUZZ_CORPUS_OUT"/
    echo "libfuzzer.sh: corpus ($(find "$work/corpus" -type f | wc -l) inputs) copied to $FUZZ_CORPUS_OUT"
fi

# Optional: line coverage of the package by the final corpus (needs
# llvm-profdata and llvm-cov, Debian package llvm-14). A separate build
# without sanitizers, with clang's source-based coverage.
if [ "${FUZZ_COVERAGE:-0}" = 1 ]; then
    tool() { command -v "$1" 2>/dev/null || command -v "$1-14"; }
    profdata=$(tool llvm-profdata); llvmcov=$(tool llvm-cov)
    # shellcheck disable=SC2086
    "$CXX" -std=c++17 -O1 -g -fprofile-instr-generate -fcoverage-mapping \
        -fsanitize=fuzzer -I"$TCL_INCLUDE" -I"$SRCDIR/unix" \
        -DPACKAGE_VERSION=\"1.0\" "$SRCDIR/generic/mmap.cpp" "$here/fuzz_mmap.cpp" \
        $TCL_LIB -o "$BUILDDIR/fuzz_mmap_cov"
    (cd "$work" && TMPDIR="$work/tmp" MMAP_FUZZ_STATS=0 \
        LLVM_PROFILE_FILE="$work/cov.profraw" "$BUILDDIR/fuzz_mmap_cov" \
        -runs=0 "$work/corpus" >"$work/cov.log" 2>&1)
    "$profdata" merge -sparse "$work/cov.profraw" -o "$work/cov.profdata"
    "$llvmcov" report "$BUILDDIR/fuzz_mmap_cov" -instr-profile="$work/cov.profdata" \
        "$SRCDIR/generic/mmap.cpp" "$SRCDIR"/generic/mmap*.h "$SRCDIR/unix/mmapUnix.h"
fi

echo "libfuzzer.sh: OK execs=${execs:-?} exec/s=${speed:-?} cov=${cov:-?}" \
     "ft=${ft:-?} corpus=${corp:-?} seconds=$elapsed"

# The log format layer: arbitrary and garbled log files opened, read and
# appended to (see fuzz_log.cpp for what makes it abort).
FUZZ_LOG_SECONDS=${FUZZ_LOG_SECONDS:-20}
if [ "$FUZZ_LOG_SECONDS" -gt 0 ]; then
    mkdir -p "$work/log-corpus"
    echo "+ $BUILDDIR/fuzz_log -max_total_time=$FUZZ_LOG_SECONDS (log: $work/fuzz_log.log)"
    set +e
    (cd "$work" && "$BUILDDIR/fuzz_log" -timeout=20 -rss_limit_mb=2048 -max_len=2048 \
        -artifact_prefix="$work/artifacts/" -max_total_time="$FUZZ_LOG_SECONDS" \
        -print_final_stats=1 ${FUZZ_FLAGS:-} "$work/log-corpus" >"$work/fuzz_log.log" 2>&1)
    status=$?
    set -e
    elapsed=$FUZZ_LOG_SECONDS
    check_run fuzz_log "$work/fuzz_log.log" "$BUILDDIR/fuzz_log <input>"
    echo "libfuzzer.sh: fuzz_log OK execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz_log.log")" \
         "seconds=$FUZZ_LOG_SECONDS"
fi

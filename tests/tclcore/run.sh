#!/bin/sh
# run.sh OUTDIR ?file ...? -- each test file under the harness in its own
# scratch directory, bounded by timeout; prints each file's tcltest totals.
# WRAP (e.g. "valgrind -q --error-exitcode=99") runs tclsh under a tool.
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?outdir}; shift
tests=${TCLTESTS:-/tmp/tclsrc/tcl8.6.13/tests}
[ $# -gt 0 ] || set -- io chanio ioCmd chan ioTrans
mkdir -p "$out"
for f in "$@"; do
    rm -rf "$out/$f.dir"; mkdir -p "$out/$f.dir"
    ( cd "$out/$f.dir" && TCLLIBPATH=${TCLLIBPATH:-$(cd "$here/../.." && pwd)} \
	timeout -k 10 ${TIMEOUT:-600} $WRAP ${TCLSH:-tclsh8.6} "$here/harness.tcl" \
	"$tests/$f.test" -verbose ${VERBOSE:-bpse} $TESTARGS > "$out/$f.out" 2>&1
      echo "$f: rc=$? $(grep -aE 'Total' "$out/$f.out" | sed 's/^.*Total/Total/') $(grep -a mmapharness: "$out/$f.out" | tail -1)" )
done

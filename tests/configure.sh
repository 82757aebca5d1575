#!/usr/bin/env bash
# tests/configure.sh -- configure --with-tcl against tclConfig.sh files that
# are wrappers, loop or hang: each must end quickly, either using the real
# tclConfig.sh or stopping with a message that says what to give instead.
#
# Usage: tests/configure.sh      (from anywhere; needs autoconf's configure
#                                 in the source tree and Tcl's tcl-dev)
# Prints one line per case and "N passed, N failed"; exits 1 on a failure.
# Runs on Debian 12 and 13 (.ci/run runs it on the host and in the Debian 13
# chroot, where dpkg-architecture, which Debian's wrapper needs, is absent).

set -uo pipefail
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
[[ -x $SRCDIR/configure ]] || { echo "configure.sh: run autoconf in $SRCDIR first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0

# The real tclConfig.sh of the system's Tcl 8.6 or 9.0, in the multiarch
# directory, and the wrapper Debian puts next to the script library.
real=
for v in 8.6 9.0; do
    for f in /usr/lib/*/tcl$v/tclConfig.sh; do
        [[ -f $f ]] && { real=$f; version=$v; break 2; }
    done
done
[[ -n $real ]] || { echo "configure.sh: no /usr/lib/*/tcl*/tclConfig.sh (install tcl-dev)" >&2; exit 2; }

# check NAME DIR EXPECT [env...] -- run configure --with-tcl=DIR; EXPECT is
# "ok REGEXP" (configure succeeds, its output matches) or "error REGEXP"
# (it fails at once and its output matches).  Every case must end within
# 60 s (the source limit is lowered to 3 s for the hanging case).
check() {
    local name=$1 dir=$2 expect=$3 result=$4
    shift 4
    local build=$WORK/build-$name out status=0 started=$SECONDS
    mkdir -p "$build"
    out=$(cd "$build" && env "$@" timeout 60 "$SRCDIR/configure" --with-tcl="$dir" 2>&1) || status=$?
    local took=$((SECONDS - started)) got=ok
    [[ $status -eq 0 ]] || got=error
    if [[ $status -eq 124 ]]; then
        echo "FAIL $name: configure still ran after 60 s"
    elif [[ $got != "$expect" ]] || ! grep -Eq -- "$result" <<<"$out"; then
        echo "FAIL $name: configure ended with $got (status $status), wanted $expect matching: $result"
        tail -n 5 <<<"$out" | sed 's/^/    | /'
    else
        echo "ok   $name ($took s): $(grep -E -- "$result" <<<"$out" | head -n 1)"
        passed=$((passed + 1))
        return
    fi
    failed=$((failed + 1))
}

multiarch_dir=$(dirname "$real")
# Debian's wrapper, if this system has one, and a copy of it elsewhere.
if [[ -f /usr/lib/tcl$version/tclConfig.sh ]] && ! [[ /usr/lib/tcl$version/tclConfig.sh -ef $real ]]; then
    check debian-wrapper "/usr/lib/tcl$version" ok "for tclConfig.sh\\.\\.\\. $real \\(what the wrapper"
fi
mkdir -p "$WORK/copy"
printf '#! /bin/sh\n. /usr/lib/`dpkg-architecture -qDEB_HOST_MULTIARCH`/tcl%s/tclConfig.sh\n' \
    "$version" >"$WORK/copy/tclConfig.sh"
check wrapper-copy "$WORK/copy" ok "for tclConfig.sh\\.\\.\\. $real \\(what the wrapper"
# A wrapper whose multiarch copy is not there.
mkdir -p "$WORK/usr-lib/tcl$version"
printf '. %s/usr-lib/`no-such-command`/tcl%s/tclConfig.sh\n' "$WORK" "$version" \
    >"$WORK/usr-lib/tcl$version/tclConfig.sh"
check wrapper-missing "$WORK/usr-lib/tcl$version" error "wrapper around .*, which does not exist: give --with-tcl=DIR"
check real "$multiarch_dir" ok "for tclConfig.sh\\.\\.\\. $real\$"

# Files that source themselves, directly, through each other, by variable.
mkdir -p "$WORK/self" "$WORK/a" "$WORK/b" "$WORK/var"
echo ". $WORK/self/tclConfig.sh" >"$WORK/self/tclConfig.sh"
check self "$WORK/self" error "sources itself"
echo ". $WORK/b/tclConfig.sh" >"$WORK/a/tclConfig.sh"
echo "source '$WORK/a/tclConfig.sh'" >"$WORK/b/tclConfig.sh"
check mutual "$WORK/a" error "wrappers nest more than 4 deep"
# shellcheck disable=SC2016 # the $ is for the file's own shell
echo '. "$TCL_DIR/tclConfig.sh"' >"$WORK/var/tclConfig.sh"
check variable "$WORK/var" error "depends on a shell variable"
# A file that loops without sourcing anything: stopped by the time limit.
mkdir -p "$WORK/hang"
{ cat "$real"; echo 'while :; do :; done'; } >"$WORK/hang/tclConfig.sh"
check hang "$WORK/hang" error "did not finish within 3 s" TEA_SOURCE_LIMIT=3
# And a file that fails while sourced.
mkdir -p "$WORK/broken"
echo 'exit 3' >"$WORK/broken/tclConfig.sh"
check broken "$WORK/broken" error "failed \\(exit status 3\\)"
check missing "$WORK/nowhere" error "no tclConfig.sh there"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

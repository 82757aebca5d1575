#!/bin/sh
# tclconfig/resolve-tclconfig.sh FILE -- the tclConfig.sh that FILE stands for.
#
# configure (TEA_PATH_TCLCONFIG) runs this on the tclConfig.sh it chose
# before sourcing it.  Prints the path of the real tclConfig.sh and exits 0,
# or prints one message and exits 1; it never loops.
#
# Why: Debian's /usr/lib/tcl8.6/tclConfig.sh (and tcl9.0's) is a wrapper,
#     . /usr/lib/`dpkg-architecture -qDEB_HOST_MULTIARCH`/tcl8.6/tclConfig.sh
# On a system without dpkg-dev the command prints nothing, the wrapper
# sources itself, and the shell recurses until it crashes minutes later.
# So a file that sources another tclConfig.sh is followed here instead, with
# the multiarch triplet asked of the compiler (gcc -print-multiarch) rather
# than of dpkg-architecture, or found by a glob when the compiler cannot
# tell.  The file finally chosen is sourced once in a child shell with a
# time limit (TEA_SOURCE_LIMIT seconds, default 20), so that no
# tclConfig.sh, however written, can hang configure.

set -u
file=$1
limit=${TEA_SOURCE_LIMIT:-20}   # seconds a tclConfig.sh may take to source

fail() {
    echo "$*"
    exit 1
}

# Debian's multiarch triplet (x86_64-linux-gnu), empty when unknown.
multiarch=
for cc in ${CC:+"$CC"} gcc cc; do
    multiarch=`$cc -print-multiarch 2>/dev/null` && test -n "$multiarch" && break
    multiarch=
done

# The path a wrapper sources (command substitutions shown as @MULTIARCH@),
# or nothing when $1 sources no tclConfig.sh.
sourced_path() {
    awk '
        { line = $0; sub(/^[ \t]+/, "", line) }
        line ~ /^(\.|source)[ \t]/ {
            sub(/^(\.|source)[ \t]+/, "", line)
            gsub(/`[^`]*`/, "@MULTIARCH@", line)
            gsub(/\$\([^)]*\)/, "@MULTIARCH@", line)
            gsub(/["\047]/, "", line)
            sub(/[ \t;].*$/, "", line)
            if (line ~ /tclConfig\.sh$/) { print line; exit }
        }' "$1"
}

hops=0
while :; do
    test -f "$file" || fail "$file: no such file"
    target=`sourced_path "$file"`
    test -n "$target" || break
    hops=`expr $hops + 1`
    test $hops -le 4 || fail "$file: tclConfig.sh wrappers nest more than 4 deep"
    case $target in
    *'$'*)
        fail "$file is a wrapper that sources $target, a path that depends on" \
             "a shell variable: give --with-tcl=DIR naming the directory of the" \
             "real tclConfig.sh" ;;
    *@MULTIARCH@*)
        if test -n "$multiarch"; then
            real=`echo "$target" | sed "s|@MULTIARCH@|$multiarch|g"`
        else
            pattern=`echo "$target" | sed 's|@MULTIARCH@|*|g'`
            set -- $pattern
            test $# -eq 1 || fail "$file is a wrapper; which of $* is meant" \
                "cannot be told: give --with-tcl=DIR naming its directory"
            real=$1
        fi ;;
    *)
        real=$target ;;
    esac
    if test "$real" -ef "$file"; then
        fail "$file sources itself (it is a wrapper around $target):" \
             "give --with-tcl=DIR naming the directory of the real tclConfig.sh"
    fi
    test -f "$real" || fail "$file is a wrapper around $real, which does not" \
        "exist: give --with-tcl=DIR naming the directory of the real tclConfig.sh"
    file=$real
done

# Source it once in a child shell, polled (a background sleep as the
# watchdog would keep configure's output pipes open after we are done).
( . "$file" ) >/dev/null 2>&1 </dev/null &
child=$!
# POSIX sleep takes whole seconds; most also take 0.1.
if sleep 0.1 2>/dev/null; then
    tick=0.1 ticks_allowed=`expr $limit \* 10`
else
    tick=1 ticks_allowed=$limit
fi
ticks=0
while kill -0 $child 2>/dev/null; do
    ticks=`expr $ticks + 1`
    if test $ticks -gt $ticks_allowed; then
        kill -9 $child 2>/dev/null
        wait $child 2>/dev/null
        fail "sourcing $file did not finish within $limit s"
    fi
    sleep $tick
done
status=0
wait $child || status=$?
test $status -eq 0 || fail "sourcing $file failed (exit status $status)"
echo "$file"

#!/usr/bin/env bash
# tests/tcl9.sh -- build the mmap package against Tcl 9.0 and run the test
# suite with tclsh9.0: the system's Tcl 9 when there is one (Debian 13:
# apt-get install tcl9.0-dev tcl9.0-thread), else one fetched into a cache
# (a Debian 12 amd64 machine, which has no Tcl 9 package).
#
# Usage:  tests/tcl9.sh ?tcltest options for tests/all.tcl?
#   e.g.  tests/tcl9.sh -file channel.test -verbose bpe
#
# Environment:
#   TCL9_CACHE   where the Tcl 9 install and its downloads are kept
#                (default /var/cache/mmap-tcl9); reused by later runs.
#   TCL9_BUILD   build directory for the package (default tcl9-test-build in
#                the current directory, so that checkouts side by side do
#                not share one);
#                emptied and configured afresh on every run.
#
# The system's Tcl 9 is tclsh9.0 on PATH plus a tclConfig.sh for 9.0 in
# /usr/lib/<multiarch>/tcl9.0 or /usr/local/lib.  Without one, Tcl 9 comes
# from Debian 13's tcl9.0 binary packages (libtcl9.0,
# tcl9.0-dev), fetched from Debian's archive by exact file name and checked
# against pinned SHA-256 sums.  (Debian's source tarball of Tcl 9 is not
# served by the archive mirror this project can reach, so building Tcl from
# source is not an option here.)  Those packages are unpacked with
# dpkg-deb -x into a private prefix, without touching the system:
#   $PREFIX/lib       libtcl9.0.so, libtclstub9.0.a, libtommath.so.1,
#                     tclConfig.sh (paths rewritten to $PREFIX), tcl9.0/
#                     (Tcl's script library) and tcl9/9.0/ (its modules,
#                     tcltest among them)
#   $PREFIX/include   tcl9.0/*.h
#   $PREFIX/bin       tclsh9.0, compiled here from Tcl's own tclAppInit.c
#                     with an rpath to $PREFIX/lib, so it (and every child
#                     tclsh the tests start) runs without LD_LIBRARY_PATH.
# libtommath1 (which libtcl9.0 needs) is Debian 12's own, via apt-get
# download.  Debian 13's libtcl9.0 asks for one symbol that Debian 12's
# glibc 2.36 lacks: fmod@GLIBC_2.38 (glibc 2.38 only gave fmod a new
# symbol version; the old fmod@GLIBC_2.2.5 computes the same result).  When
# the running glibc lacks that version, the library's version reference is
# rewritten to GLIBC_2.2.5 (fix_glibc_versions below); any other missing
# symbol makes the script stop instead of guessing.
#
# Then the package is configured out of tree against that Tcl
# (configure --with-tcl=DIR TCLSH=.../tclsh9.0), built with -Werror, and `make test` runs the suite.  The
# last line printed is the runner's "N passed, N failed, N skipped"; the
# exit status is non-zero when a step or any test failed.  Timings go to
# stderr, so that line stays last on stdout.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TCL9_CACHE:-/var/cache/mmap-tcl9}
TCL9_PATCHLEVEL=9.0.1
DEB_VERSION=9.0.1+dfsg-2
POOL=http://deb.debian.org/debian/pool/main/t/tcl9.0
PREFIX=$CACHE/tcl$TCL9_PATCHLEVEL
BUILD=${TCL9_BUILD:-$PWD/tcl9-test-build}
# Bump when the way $PREFIX is laid out changes, so old caches are redone.
RECIPE=1

# file name and SHA-256 of each package used
DEBS=(
    "libtcl9.0_${DEB_VERSION}_amd64.deb 7ff1eb419b8dae19194a5fa204a75044419d32ff0be1ddc039f1b5c0bed4aed5"
    "tcl9.0-dev_${DEB_VERSION}_amd64.deb 61d322e18d880c671d6161fbc4b8eff51af86684ad9499b2aa2faf3a1cf2eb73"
)

say() { echo "tcl9.sh: $*"; }
die() { echo "tcl9.sh: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
# Timings go to stderr: stdout must end with the test summary line.
took() { awk -v what="$1" -v t0="$2" -v t1="$(now)" \
    'BEGIN { printf "tcl9.sh: %s took %.1f s\n", what, t1 - t0 }' >&2; }

# A Tcl 9 installed on this system (Debian 13: tcl9.0-dev) is used as it
# is: tclsh9.0 on PATH and a tclConfig.sh that says TCL_VERSION='9.0'.
SYSTEM_TCLSH=$(command -v tclsh9.0 || true)
SYSTEM_CONFIG=
for f in /usr/lib/*/tcl9.0/tclConfig.sh /usr/local/lib/tcl9.0/tclConfig.sh \
         /usr/local/lib/tclConfig.sh; do
    if [[ -f $f ]] && grep -q "^TCL_VERSION='9.0'" "$f"; then
        SYSTEM_CONFIG=$f
        break
    fi
done

# Without one: what the download needs, checked before anything is fetched.
check_download_tools() {
    local tool
    say "no Tcl 9 on this system (tclsh9.0 and a tclConfig.sh for 9.0, as in" \
        "Debian 13's tcl9.0-dev): fetching Debian 13's packages, which needs amd64," \
        "curl or wget, dpkg-deb, objdump, apt-get, gcc and sha256sum"
    [[ $(dpkg --print-architecture 2>/dev/null) == amd64 ]] ||
        die "the pinned Tcl 9 packages are for amd64; this is $(dpkg --print-architecture 2>/dev/null || uname -m)"
    for tool in dpkg-deb objdump apt-get gcc tclsh sha256sum; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
    if command -v curl >/dev/null; then
        fetch() { curl -fsSL --retry 3 -o "$1" "$2"; }
    elif command -v wget >/dev/null; then
        fetch() { wget -q --tries=3 -O "$1" "$2"; }
    else
        die "neither curl nor wget is installed"
    fi
    MULTIARCH=$(gcc -print-multiarch)
    SYSLIB=/lib/$MULTIARCH
}
for tool in g++ make; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
t_all=$(now)

# fix_glibc_versions LIB --
#   For each glibc version that LIB asks of libc.so.6/libm.so.6 and the
#   system's copy does not define: when the only symbols LIB takes at that
#   version are in ALLOWED (symbols whose older version behaves the same),
#   point the version reference at GLIBC_2.2.5, the x86-64 base version.
fix_glibc_versions() {
    local lib=$1 allowed=" fmod " dep version sym syms missing=()
    local refs
    refs=$(objdump -p "$lib" | awk '
        /^Version References:/ { on = 1; next }
        on && /required from/   { dep = $3; sub(/:$/, "", dep); next }
        on && NF == 4           { print dep, $4 }
        on && NF == 0 && dep    { exit }')
    while read -r dep version; do
        [[ $dep == libc.so.6 || $dep == libm.so.6 ]] || continue
        if objdump -p "$SYSLIB/$dep" |
                awk '/^Version definitions:/ {on = 1} /^Version References:/ {on = 0} on' |
                grep -qw -- "$version"; then
            continue
        fi
        syms=$(objdump -T "$lib" | awk -v v="($version)" '/\*UND\*/ && $(NF-1) == v {print $NF}')
        [[ -n $syms ]] || die "cannot tell which symbols of $lib need $version"
        for sym in $syms; do
            [[ $allowed == *" $sym "* ]] ||
                die "$lib needs $sym@$version, which glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2) lacks"
        done
        missing+=("$dep" "$version")
    done <<<"$refs"
    [[ ${#missing[@]} -gt 0 ]] || return 0
    say "rewriting version references the system glibc lacks: ${missing[*]}"
    local script=$lib.patch.tcl
    cat >"$script" <<'EOF'
# Rewrite Vernaux entries of an ELF64 little-endian shared library in place:
# for each (file, version) pair given, the entry naming that version under
# that file is pointed at GLIBC_2.2.5 (name offset in .dynstr and hash).
lassign $argv path
set wanted {}
foreach {file version} [lrange $argv 1 end] {lappend wanted [list $file $version]}
set f [open $path r+]
fconfigure $f -translation binary
set elf [read $f]
if {[string range $elf 0 5] ne "\x7fELF\x02\x01"} {error "$path: not ELF64 little-endian"}
binary scan $elf @40wu shoff
binary scan $elf @58sususu shentsize shnum shstrndx
proc section {i} {
    global elf shoff shentsize
    binary scan $elf @[expr {$shoff + $i * $shentsize}]iuiuwuwuwuwuiuiu \
        name type flags addr offset size link info
    return [list $type $offset $size $link $info]
}
proc elfHash {s} {
    set h 0
    foreach c [split $s ""] {
        set h [expr {(($h << 4) + [scan $c %c]) & 0xffffffff}]
        set g [expr {$h & 0xf0000000}]
        if {$g} {set h [expr {($h ^ ($g >> 24)) & ~$g & 0xffffffff}]}
    }
    return $h
}
set verneed {}
for {set i 0} {$i < $shnum} {incr i} {
    if {[lindex [section $i] 0] == 0x6ffffffe} {set verneed [section $i]}
}
if {$verneed eq {}} {error "$path: no .gnu.version_r section"}
lassign $verneed - vnOff - strIndex count
lassign [section $strIndex] - strOff strSize
set dynstr [string range $elf $strOff [expr {$strOff + $strSize - 1}]]
proc str {at} {
    global dynstr
    return [string range $dynstr $at [expr {[string first \0 $dynstr $at] - 1}]]
}
set base [string first \0GLIBC_2.2.5\0 $dynstr]
if {$base < 0} {error "$path: no GLIBC_2.2.5 string in .dynstr"}
incr base
set done 0
set at $vnOff
for {set n 0} {$n < $count} {incr n} {
    binary scan $elf @${at}susuiuiuiu vnVersion vnCnt vnFile vnAux vnNext
    set aux [expr {$at + $vnAux}]
    for {set k 0} {$k < $vnCnt} {incr k} {
        binary scan $elf @${aux}iususuiuiu hash flags other name next
        if {[list [str $vnFile] [str $name]] in $wanted} {
            puts "  [str $vnFile]: [str $name] -> GLIBC_2.2.5"
            seek $f $aux
            puts -nonewline $f [binary format iu [elfHash GLIBC_2.2.5]]
            seek $f [expr {$aux + 8}]
            puts -nonewline $f [binary format iu $base]
            incr done
        }
        incr aux $next
    }
    incr at $vnNext
}
close $f
if {$done != [llength $wanted]} {error "$path: patched $done of [llength $wanted] references"}
EOF
    tclsh "$script" "$lib" "${missing[@]}"
    rm -f "$script"
}

# ---------------------------------------------------------------------------
# 1. The system's Tcl 9, or else Tcl 9 in $PREFIX, once per cache
# ---------------------------------------------------------------------------
stamp="recipe $RECIPE: ${DEBS[*]}"
if [[ -n $SYSTEM_TCLSH && -n $SYSTEM_CONFIG ]]; then
    say "using this system's Tcl 9: $SYSTEM_TCLSH, $SYSTEM_CONFIG"
    tcl9_config_dir=$(dirname "$SYSTEM_CONFIG")
    tcl9_tclsh=$SYSTEM_TCLSH
elif [[ -f $PREFIX/.installed && $(cat "$PREFIX/.installed") == "$stamp" ]]; then
    say "Tcl $TCL9_PATCHLEVEL already installed in $PREFIX"
else
    check_download_tools
    t_tcl=$(now)
    mkdir -p "$CACHE/downloads" 2>/dev/null && [[ -w $CACHE/downloads ]] ||
        die "cannot write to $CACHE: set TCL9_CACHE to a directory of yours"
    for entry in "${DEBS[@]}"; do
        read -r file sum <<<"$entry"
        dest=$CACHE/downloads/$file
        if [[ ! -f $dest ]] || ! echo "$sum  $dest" | sha256sum --check --status; then
            say "downloading $POOL/$file"
            fetch "$dest.part" "$POOL/$file" ||
                die "download of $file failed (the archive may have moved to a newer" \
                    "tcl9.0 package: update DEB_VERSION and the sums in $0)"
            mv "$dest.part" "$dest"
        fi
        echo "$sum  $dest" | sha256sum --check --status ||
            die "$file: SHA-256 is not $sum"
    done
    # libtommath1 from this system's own Debian release (apt checks its hash).
    tommath=$(ls "$CACHE"/downloads/libtommath1_*.deb 2>/dev/null | head -n 1 || true)
    if [[ -z $tommath ]]; then
        say "downloading libtommath1 with apt-get download"
        (cd "$CACHE/downloads" &&
            apt-get -o APT::Sandbox::User="$(id -un)" download libtommath1 2>&1) ||
            die "apt-get download libtommath1 failed (run apt-get update first?)"
        tommath=$(ls "$CACHE"/downloads/libtommath1_*.deb | head -n 1)
    fi

    stage=$PREFIX.new
    rm -rf "$stage" "$stage.x"
    mkdir -p "$stage.x" "$stage/bin" "$stage/lib" "$stage/include"
    for entry in "${DEBS[@]}"; do
        read -r file sum <<<"$entry"
        dpkg-deb -x "$CACHE/downloads/$file" "$stage.x"
    done
    dpkg-deb -x "$tommath" "$stage.x"
    x=$stage.x
    cp -a "$x/usr/lib/$MULTIARCH/libtcl9.0.so" "$x/usr/lib/$MULTIARCH/libtclstub9.0.a" \
        "$x/usr/lib/$MULTIARCH"/libtommath.so.1* "$stage/lib/"
    cp -a "$x/usr/lib/tcl9.0" "$stage/lib/"
    rm -f "$stage/lib/tcl9.0/tclConfig.sh" "$stage/lib/tcl9.0/tclooConfig.sh"
    # Debian keeps Tcl's modules (tcltest, msgcat, http...) in a tcl9 folder
    # inside the script library; Tcl's own module path wants lib/tcl9/9.0.
    mkdir -p "$stage/lib/tcl9"
    mv "$stage/lib/tcl9.0/tcl9" "$stage/lib/tcl9/9.0"
    cp -a "$x/usr/include/tcl9.0" "$stage/include/"
    # tclConfig.sh with every /usr path pointing into $PREFIX instead.
    sed -e "s#/usr/lib/$MULTIARCH#$PREFIX/lib#g" \
        -e "s#/usr/include/#$PREFIX/include/#g" \
        -e "s#^TCL_PREFIX=.*#TCL_PREFIX='$PREFIX'#" \
        -e "s#^TCL_EXEC_PREFIX=.*#TCL_EXEC_PREFIX='$PREFIX'#" \
        "$x/usr/lib/$MULTIARCH/tcl9.0/tclConfig.sh" >"$stage/lib/tclConfig.sh"
    fix_glibc_versions "$stage/lib/libtcl9.0.so"
    # tclsh9.0: Tcl's own tclAppInit.c, linked with an rpath (DT_RPATH, which
    # also serves libtcl9.0.so's own search for libtommath.so.1).
    gcc -O2 -o "$stage/bin/tclsh9.0" "$stage/lib/tcl9.0/tclAppInit.c" \
        -I"$stage/include/tcl9.0" -L"$stage/lib" -ltcl9.0 \
        -Wl,-rpath-link,"$stage/lib" -Wl,--disable-new-dtags,-rpath,"$PREFIX/lib"
    rm -rf "$stage.x" "$PREFIX"
    mv "$stage" "$PREFIX"
    got=$(echo 'puts [info patchlevel]:[expr {fmod(7.5, 2)}]:[package require tcltest]' |
          "$PREFIX/bin/tclsh9.0") || die "the new tclsh9.0 does not run"
    [[ $got == "$TCL9_PATCHLEVEL:1.5:"* ]] || die "the new tclsh9.0 says $got"
    echo "$stamp" >"$PREFIX/.installed"
    say "installed Tcl $TCL9_PATCHLEVEL in $PREFIX (tcltest ${got##*:})"
    took "Tcl 9 download and install" "$t_tcl"
fi

# The downloaded Tcl, when not the system's.
: "${tcl9_config_dir:=$PREFIX/lib}" "${tcl9_tclsh:=$PREFIX/bin/tclsh9.0}"

# ---------------------------------------------------------------------------
# 2. The package, configured out of tree against that Tcl, built with -Werror
# ---------------------------------------------------------------------------
t_build=$(now)
if [[ ! -x $SRCDIR/configure || $SRCDIR/configure -ot $SRCDIR/configure.ac ||
      $SRCDIR/configure -ot $SRCDIR/tclconfig/tcl.m4 ]]; then
    say "running autoconf in $SRCDIR"
    (cd "$SRCDIR" && autoconf)
fi
# Empty the build directory, but only if it is one (or new, or empty).
if [[ -d $BUILD && -n $(ls -A "$BUILD") && ! -f $BUILD/config.status ]]; then
    die "$BUILD is not empty and holds no config.status: not wiping it"
fi
rm -rf "$BUILD"
mkdir -p "$BUILD"
cd "$BUILD"
say "configuring in $BUILD"
"$SRCDIR/configure" --with-tcl="$tcl9_config_dir" TCLSH="$tcl9_tclsh" >configure.out 2>&1 ||
    { cat configure.out; die "configure failed"; }
grep -E '^TCLSH *=|^PKG_LIB_FILE *=' Makefile
grep -q "^PKG_LIB_FILE *= *libtcl9mmap" Makefile ||
    die "configure did not build for Tcl 9 (see $BUILD/configure.out)"
make --no-print-directory CXXFLAGS="-g -O2 -Werror"
took "configure and build against Tcl 9" "$t_build"

# ---------------------------------------------------------------------------
# 3. The suite under tclsh9.0
# ---------------------------------------------------------------------------
t_test=$(now)
status=0
make --no-print-directory test TESTFLAGS="$*" || status=$?
took "make test under tclsh9.0" "$t_test"
took "tests/tcl9.sh in all" "$t_all"
exit "$status"

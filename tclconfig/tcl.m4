# tclconfig/tcl.m4 -- a small, self-written set of TEA-style macros.
#
# Why our own file: Debian's tcl-dev ships only the Tcl core's SC_* macros
# (/usr/share/aclocal/tcl.m4), and the full TEA tclconfig is far bigger than
# one C++ extension on POSIX needs.  These macros keep the TEA names and the
# TEA flow (find tclConfig.sh, load it, inherit Tcl's prefix, build a stubs
# enabled shared library), and nothing more.  configure.ac pulls this file in
# with m4_include, so no aclocal/automake/libtool is involved.
#
# Order of use in configure.ac:
#   TEA_INIT, TEA_PATH_TCLCONFIG, TEA_LOAD_TCLCONFIG, TEA_PREFIX,
#   AC_PROG_CXX + AC_LANG([C++]), TEA_SETUP_COMPILER, TEA_ENABLE_STUBS,
#   TEA_MAKE_LIB, TEA_PROG_TCLSH

#------------------------------------------------------------------------
# TEA_INIT
#   Why: fail at once, with a clear message, when configure is not run
#   from (or against, in a VPATH build) a complete source tree.  The other
#   macros AC_REQUIRE it, so it always runs first.
#------------------------------------------------------------------------
AC_DEFUN([TEA_INIT], [
    AC_MSG_CHECKING([for a TEA-style source tree])
    if test ! -f "$srcdir/tclconfig/tcl.m4"; then
        AC_MSG_ERROR([$srcdir/tclconfig/tcl.m4 not found: run configure from the mmap sources])
    fi
    AC_MSG_RESULT([yes ($srcdir)])
])

#------------------------------------------------------------------------
# TEA_PATH_TCLCONFIG
#   Why: every compile/link setting of an extension comes from the Tcl it
#   will be loaded into, and Tcl records them in tclConfig.sh.  Take the
#   directory from --with-tcl=DIR, else search the usual install places
#   (Debian's multiarch dir, /usr/local, the chosen libdir, Tcl 9 dirs).
#   A wrapper tclConfig.sh (Debian's /usr/lib/tcl8.6) is followed to the
#   real one by tclconfig/resolve-tclconfig.sh.
#   Sets TCL_BIN_DIR to the directory holding tclConfig.sh.
#------------------------------------------------------------------------
AC_DEFUN([TEA_PATH_TCLCONFIG], [
    AC_REQUIRE([TEA_INIT])
    AC_ARG_WITH([tcl],
        [AS_HELP_STRING([--with-tcl=DIR],
            [directory containing tclConfig.sh (default: search the usual places)])],
        [with_tclconfig=$withval], [with_tclconfig=])
    AC_MSG_CHECKING([for tclConfig.sh])
    TCL_BIN_DIR=
    test "x$with_tclconfig" = xyes && with_tclconfig=
    if test "x$with_tclconfig" = xno; then
        AC_MSG_ERROR([this extension cannot be built without Tcl])
    elif test -n "$with_tclconfig"; then
        # An explicit choice must work; never fall back silently.
        if test -f "$with_tclconfig/tclConfig.sh"; then
            TCL_BIN_DIR=`cd "$with_tclconfig" && pwd`
        else
            AC_MSG_ERROR([--with-tcl=$with_tclconfig: no tclConfig.sh there])
        fi
    else
        # ${libdir} still holds an unexpanded ${exec_prefix}; expand it.
        tea_p=$prefix; test "x$tea_p" = xNONE && tea_p=$ac_default_prefix
        tea_e=$exec_prefix; test "x$tea_e" = xNONE && tea_e=$tea_p
        tea_libdir=`prefix=$tea_p; exec_prefix=$tea_e; eval echo "$libdir"`
        for d in "$tea_libdir" "$tea_libdir/tcl8.6" "$tea_libdir/tcl9.0" \
                 /usr/lib/x86_64-linux-gnu/tcl8.6 /usr/lib/tcl8.6 \
                 /usr/lib/x86_64-linux-gnu/tcl9.0 /usr/lib/tcl9.0 \
                 /usr/local/lib /usr/local/lib/tcl8.6 /usr/local/lib/tcl9.0 \
                 /usr/lib /usr/lib64 /usr/lib/*/tcl8.6 /usr/lib/*/tcl9.0; do
            if test -f "$d/tclConfig.sh"; then
                TCL_BIN_DIR=`cd "$d" && pwd`
                break
            fi
        done
        if test -z "$TCL_BIN_DIR"; then
            AC_MSG_ERROR([cannot find tclConfig.sh: install tcl-dev or use --with-tcl=DIR])
        fi
    fi
    # Debian's tclConfig.sh outside the multiarch directory is a wrapper
    # that needs dpkg-architecture (or loops without it): use the file it
    # stands for.  The script also makes sure the file sources in bounded
    # time, so no tclConfig.sh can hang configure.
    tea_found=$TCL_BIN_DIR/tclConfig.sh
    tea_real=`CC="${CC:-}" sh "$srcdir/tclconfig/resolve-tclconfig.sh" "$tea_found"` ||
        AC_MSG_ERROR([$tea_real])
    TCL_BIN_DIR=`dirname "$tea_real"`
    if test "x$tea_real" = "x$tea_found"; then
        AC_MSG_RESULT([$tea_found])
    else
        AC_MSG_RESULT([$tea_real (what the wrapper $tea_found sources)])
    fi
])

#------------------------------------------------------------------------
# TEA_LOAD_TCLCONFIG
#   Why: pull Tcl's own settings (version, headers, stub library, prefix,
#   shared library suffix) into configure and on into the Makefile, and
#   stop early with a clear message if the file lacks one of them.
#------------------------------------------------------------------------
AC_DEFUN([TEA_LOAD_TCLCONFIG], [
    AC_REQUIRE([TEA_PATH_TCLCONFIG])
    AC_MSG_CHECKING([loading $TCL_BIN_DIR/tclConfig.sh])
    . "$TCL_BIN_DIR/tclConfig.sh"
    AC_MSG_RESULT([Tcl $TCL_VERSION$TCL_PATCH_LEVEL])
    for v in TCL_VERSION TCL_MAJOR_VERSION TCL_INCLUDE_SPEC \
             TCL_STUB_LIB_SPEC TCL_LIB_SPEC TCL_PREFIX TCL_SHLIB_SUFFIX; do
        eval "test -n \"\$$v\"" || AC_MSG_ERROR([$TCL_BIN_DIR/tclConfig.sh does not set $v])
    done
    if test "$TCL_MAJOR_VERSION" -lt 8 ||
       { test "$TCL_MAJOR_VERSION" -eq 8 && test "$TCL_MINOR_VERSION" -lt 6; }; then
        AC_MSG_ERROR([Tcl $TCL_VERSION is too old: 8.6 or newer is needed])
    fi
    test -n "$TCL_EXEC_PREFIX" || TCL_EXEC_PREFIX=$TCL_PREFIX
    AC_SUBST([TCL_BIN_DIR])
    AC_SUBST([TCL_VERSION])
    AC_SUBST([TCL_MAJOR_VERSION])
    AC_SUBST([TCL_INCLUDE_SPEC])
    AC_SUBST([TCL_STUB_LIB_SPEC])
    AC_SUBST([TCL_LIB_SPEC])
    AC_SUBST([TCL_PREFIX])
    AC_SUBST([TCL_EXEC_PREFIX])
    AC_SUBST([TCL_SHLIB_SUFFIX])
])

#------------------------------------------------------------------------
# TEA_PREFIX
#   Why: an extension belongs next to the Tcl that loads it.  Unless the
#   user gave --prefix/--exec-prefix, use Tcl's, so `make install` puts the
#   package into ${libdir}/mmapX.Y, a directory on that tclsh's auto_path
#   (on Debian: /usr/lib/mmap1.0).
#------------------------------------------------------------------------
AC_DEFUN([TEA_PREFIX], [
    AC_REQUIRE([TEA_LOAD_TCLCONFIG])
    if test "x$prefix" = xNONE; then
        AC_MSG_NOTICE([--prefix defaults to Tcl's prefix: $TCL_PREFIX])
        prefix=$TCL_PREFIX
        test "x$exec_prefix" = xNONE && exec_prefix=$TCL_EXEC_PREFIX
    fi
    # With only --prefix given, exec_prefix follows it, as usual.
    test "x$exec_prefix" = xNONE && exec_prefix=$prefix
])

#------------------------------------------------------------------------
# TEA_SETUP_COMPILER
#   Why: the extension is C++17 and a shared object, so the C++ compiler
#   (configure.ac calls AC_PROG_CXX and AC_LANG([C++]) first) must accept
#   -std=c++17 and position independent code.  Those flags, and the
#   warnings, go into PKG_CXXFLAGS, which the Makefile puts in front of
#   CXXFLAGS; CXXFLAGS stays the user's to choose (AC_PROG_CXX: -g -O2).
#------------------------------------------------------------------------
AC_DEFUN([TEA_SETUP_COMPILER], [
    AC_REQUIRE([AC_PROG_CXX])
    PKG_CXXFLAGS="-std=c++17 -Wall -Wextra -fPIC"
    AC_MSG_CHECKING([whether $CXX accepts $PKG_CXXFLAGS])
    tea_save_CXXFLAGS=$CXXFLAGS
    CXXFLAGS="$PKG_CXXFLAGS $CXXFLAGS"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <optional>
#include <string_view>]],
            [[std::optional<std::string_view> s{"x"};
              if constexpr (sizeof(int) > 0) return s->size() == 1 ? 0 : 1;]])],
        [AC_MSG_RESULT([yes])],
        [AC_MSG_RESULT([no])
         AC_MSG_ERROR([$CXX cannot compile C++17 code with $PKG_CXXFLAGS])])
    CXXFLAGS=$tea_save_CXXFLAGS
    AC_SUBST([PKG_CXXFLAGS])
])

#------------------------------------------------------------------------
# TEA_ENABLE_STUBS
#   Why: a stubs build (-DUSE_TCL_STUBS, linked to the stub library) does
#   not bind to one libtcl file, so the same .so loads into any Tcl 8.6.x
#   tclsh or wish.  --disable-stubs links libtcl directly (debugging aid).
#   Sets TCL_LINK_SPEC to what the library must be linked with.
#------------------------------------------------------------------------
AC_DEFUN([TEA_ENABLE_STUBS], [
    AC_REQUIRE([TEA_LOAD_TCLCONFIG])
    AC_ARG_ENABLE([stubs],
        [AS_HELP_STRING([--disable-stubs], [link libtcl directly instead of the Tcl stub library])],
        [tea_stubs=$enableval], [tea_stubs=yes])
    AC_MSG_CHECKING([whether to build with Tcl stubs])
    if test "x$tea_stubs" = xno; then
        TCL_LINK_SPEC=$TCL_LIB_SPEC
    else
        AC_DEFINE([USE_TCL_STUBS], [1], [Call Tcl through its stubs table])
        TCL_LINK_SPEC=$TCL_STUB_LIB_SPEC
    fi
    AC_MSG_RESULT([$tea_stubs])
    AC_SUBST([TCL_LINK_SPEC])
])

#------------------------------------------------------------------------
# TEA_MAKE_LIB
#   Why: the library name encodes the Tcl major version, so that builds for
#   Tcl 8 and Tcl 9 can sit in one package directory and pkgIndex.tcl picks
#   the right one: libmmap1.0.so for Tcl 8, libtcl9mmap1.0.so for Tcl 9.
#   Links with the C++ driver ($CXX -shared) so libstdc++ comes along, and
#   with --no-undefined where the linker knows it, so a missing symbol fails
#   the build instead of the first `package require`.
#------------------------------------------------------------------------
AC_DEFUN([TEA_MAKE_LIB], [
    AC_REQUIRE([TEA_SETUP_COMPILER])
    AC_REQUIRE([TEA_ENABLE_STUBS])
    if test "$TCL_MAJOR_VERSION" -ge 9; then
        PKG_LIB_FILE=libtcl9${PACKAGE_NAME}${PACKAGE_VERSION}${TCL_SHLIB_SUFFIX}
    else
        PKG_LIB_FILE=lib${PACKAGE_NAME}${PACKAGE_VERSION}${TCL_SHLIB_SUFFIX}
    fi
    SHLIB_LD="$CXX -shared"
    SHLIB_LDFLAGS=
    AC_MSG_CHECKING([whether the linker accepts -Wl,--no-undefined])
    tea_save_LDFLAGS=$LDFLAGS
    LDFLAGS="$LDFLAGS -shared -fPIC -Wl,--no-undefined"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
        [SHLIB_LDFLAGS="-Wl,--no-undefined"; AC_MSG_RESULT([yes])],
        [AC_MSG_RESULT([no])])
    LDFLAGS=$tea_save_LDFLAGS
    AC_MSG_NOTICE([library to build: $PKG_LIB_FILE])
    AC_SUBST([PKG_LIB_FILE])
    AC_SUBST([SHLIB_LD])
    AC_SUBST([SHLIB_LDFLAGS])
])

#------------------------------------------------------------------------
# TEA_PROG_TCLSH
#   Why: `make test`, `make shell` and `make demo` must run the tclsh that
#   matches the Tcl we compiled against, not whatever `tclsh` is first on
#   PATH.  Look for tclsh<version> in Tcl's bin dir first, then on PATH.
#   The user can override it: ./configure TCLSH=/path/to/tclsh
#   The tclsh found is asked for its version: a plain `tclsh` of the other
#   Tcl major (Tcl 8.6's, for a build against Tcl 9 whose tclsh9.0 is not
#   installed) would load the other library, or none, in make test.
#------------------------------------------------------------------------
AC_DEFUN([TEA_PROG_TCLSH], [
    AC_REQUIRE([TEA_LOAD_TCLCONFIG])
    AC_ARG_VAR([TCLSH], [tclsh used by make test/shell/demo])
    AC_PATH_PROGS([TCLSH], [tclsh$TCL_VERSION tclsh], [],
        [$TCL_EXEC_PREFIX/bin$PATH_SEPARATOR$TCL_PREFIX/bin$PATH_SEPARATOR$PATH])
    if test -z "$TCLSH"; then
        AC_MSG_WARN([no tclsh$TCL_VERSION found: make test/shell/demo will not work])
        TCLSH=tclsh$TCL_VERSION
    else
        AC_MSG_CHECKING([which Tcl version $TCLSH runs])
        tea_tclsh_version=`echo 'puts [[info tclversion]]' | "$TCLSH" 2>/dev/null`
        AC_MSG_RESULT([${tea_tclsh_version:-none}])
        if test "x$tea_tclsh_version" != "x$TCL_VERSION"; then
            AC_MSG_WARN([$TCLSH is not a Tcl $TCL_VERSION shell: make test/shell/demo will not load this build (give TCLSH=/path/to/tclsh$TCL_VERSION)])
        fi
    fi
])

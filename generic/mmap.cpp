/*
 * mmap.cpp --
 *
 *	The entry of the mmap package: its one translation unit, and
 *	Mmap_Init. Each Tcl face lives in a header of its own, included here
 *	in order; every include points down:
 *
 *	    mmapGlue.h        the Tcl glue every face uses
 *	    mmapChannel.h     the region behind a channel, the channel driver,
 *	                      [mmap] and [mmap::sync]
 *	    mmapRegionCmds.h  mmap::read, write, incr, cas, wait, wake, lock
 *	    mmapLogCmds.h     [mmap::log open] and the log objects
 *
 *	Mmap_SafeInit gives a safe interpreter the faces that work on
 *	channels it holds, and nothing that names a path.
 *
 *	Below them, with no Tcl: generic/mmapLog.h (the log's format and
 *	algorithms) and unix/ (mapping, msync, the SIGBUS guard, futexes,
 *	the lock word, log file creation).
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#include "mmapGlue.h"
#include "mmapChannel.h"
#include "mmapRegionCmds.h"
#include "mmapLogCmds.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "1.0"
#endif

namespace {

/*
 * What both entry points do. A safe interpreter gets only the commands
 * that work on channels it was given: [mmap], [mmap::sync] and the
 * region commands. [mmap::log open] names a path, so it is left out
 * there, as Tcl leaves out [open].
 */
int
InitPackage(Tcl_Interp *interp, bool safe) noexcept
{
#if TCL_MAJOR_VERSION > 8
    const char *const required = "9.0";
#else
    const char *const required = "8.6";
#endif
    if (Tcl_InitStubs(interp, required, 0) == nullptr) {
	return TCL_ERROR;
    }
    /* Copies to and from regions rely on it: see mmapUnix.h. */
    if (const int error = mmapunix::InstallFaultGuard()) {
	return FailPosix(interp, error, Tcl_NewStringObj(
		"cannot install the SIGBUS handler of the mmap package", -1));
    }
    if (CreateChannelCommands(interp) != TCL_OK
	    || CreateRegionCommands(interp) != TCL_OK
	    || (!safe && CreateLogCommands(interp) != TCL_OK)) {
	return TCL_ERROR;
    }
    return Tcl_PkgProvide(interp, "mmap", PACKAGE_VERSION);
}

} // namespace

extern "C" DLLEXPORT int
Mmap_Init(Tcl_Interp *interp) noexcept
{
    return InitPackage(interp, false);
}

/* [load] calls this one for a safe interpreter. */
extern "C" DLLEXPORT int
Mmap_SafeInit(Tcl_Interp *interp) noexcept
{
    return InitPackage(interp, true);
}

/*
 * mmapChannel.h --
 *
 *	The channel face of the package: the [mmap] command turns an open
 *	file channel into a new channel (type "mmap") that reads and writes
 *	a memory-mapped region of that file. Reads stop at the end of the
 *	region; writes wrap around to its start, so the region works as a
 *	fixed-size, always-newest log. [mmap::sync] makes its writes durable.
 *
 *	In order: the region (the state behind one channel and the byte
 *	copies, retried and explained when the file shrinks), the channel
 *	driver procs Tcl calls, then the commands. The POSIX side (mapping,
 *	msync, the SIGBUS guard) is in unix/mmapUnix.h; this file turns its
 *	errno results into channel and Tcl errors.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_CHANNEL_H
#define MMAP_CHANNEL_H

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <iterator>
#include <new>

#include "mmapGlue.h"
#include "mmapUnix.h"
#include "mmapOwner.h"

namespace {

/*
 *----------------------------------------------------------------------
 * 1. The region
 *----------------------------------------------------------------------
 */

/* What a write does afterwards to make itself durable: the -sync option. */
enum class SyncMode { None, Async, Sync };
const char *const syncModeNames[] = {"none", "async", "sync", nullptr};

struct MmapChannel {
    mmapunix::Mapping mapping;	/* the region; unmapped on destruction */
    mmapunix::FileIdentity file;	/* to see whether the file shrank */
    std::uint64_t offset = 0;	/* where the region starts in the file */
    bool shared = false;	/* MAP_SHARED: writes reach the file */
    SyncMode sync = SyncMode::None;
    std::size_t position = 0;	/* 0..length; length means end of data */
    std::size_t readSinceSeek = 0;	/* 0..length: see ReadBytes */
    int lookError = 0;		/* the last look at the file after a fault: */
    mmapunix::FileLook look;	/* 0 and what it found, or why it failed */
    bool fileChanging = false;	/* changed between the looks at one fault */
    std::size_t dirtyLow = SIZE_MAX;	/* written since the last sync: */
    std::size_t dirtyHigh = 0;		/* [dirtyLow, dirtyHigh) */
    Tcl_Channel channel = nullptr;
    int direction = 0;		/* TCL_READABLE and/or TCL_WRITABLE */
    int watchMask = 0;		/* events a fileevent waits for */
    Tcl_TimerToken timer = nullptr;	/* pending fileevent notification */
    Tcl_Obj *lastReport = nullptr;	/* the last fault report left in the
					 * error bypass (we hold a reference,
					 * so no other error can have its
					 * address): only it may be dropped */
    mmapunix::LockFile *lockFile = nullptr;	/* from the first mmap::lock of a
						 * shared region (see LockFileOf) */

    MmapChannel() noexcept = default;
    MmapChannel(const MmapChannel &) = delete;
    MmapChannel &operator=(const MmapChannel &) = delete;
    ~MmapChannel() {
	ForgetReport();
	if (lockFile != nullptr) {
	    lockFile->Release();
	}
    }

    /*
     * The lock file mmap::lock proves its holders alive with. A shared
     * region's words are seen by other processes, so it is the process's
     * descriptor of the mapped file, opened again by its name at the first
     * lock: the channel keeps no descriptor before, since closing one
     * drops the process's record locks on the file (see FileIdentity). A
     * private region's words are this process's alone. 0 or an errno
     * value (ENOENT: the name no longer leads to the mapped file).
     */
    int LockFileOf(mmapunix::LockFile *&out) noexcept {
	if (lockFile == nullptr) {
	    if (!shared) {
		lockFile = mmapunix::LockFile::Process();
	    } else if (const int error = mmapunix::LockFile::Acquire(-1,
		    file.Path(), file.Device(), file.Inode(), true, lockFile)) {
		return error;
	    }
	}
	out = lockFile;
	return 0;
    }

    /* WriteBytes' result when a page had no file behind it. */
    static constexpr int FAULTED = -1;
    /*
     * How long a faulting copy is tried again while the file is long
     * enough again (it shrank and grew back between fault and look). A
     * time, not a count: a file cut and regrown in a tight loop can
     * defeat dozens of tries in a row, while a page the disk cannot read
     * may take long to fail each time.
     */
    static constexpr std::chrono::milliseconds RETRY_TIME{20};

    std::size_t Length() const noexcept { return mapping.length(); }

    /*
     * Copy region bytes [at, at+count) out, stopping before the first
     * page that has no file behind it (a file that shrank loses whole
     * pages from its end). Returns how many bytes were copied.
     */
    std::size_t CopyOut(char *dst, std::size_t at, std::size_t count) const noexcept {
	const unsigned char *data = mapping.data();
	while (count > 0) {
	    const void *fault = mmapunix::GuardedCopy(dst, data + at, count,
		    data, data + Length());
	    if (fault == nullptr) {
		return count;
	    }
	    const std::size_t stop = mapping.PageStartOf(
		    static_cast<const unsigned char *>(fault) - data);
	    if (stop <= at) {
		return 0;
	    }
	    count = stop - at;	/* retry the part below the missing page */
	}
	return 0;
    }
    bool CopyIn(std::size_t at, const char *src, std::size_t count) const noexcept {
	unsigned char *data = mapping.data();
	return mmapunix::GuardedCopy(data + at, src, count, data,
		data + Length()) == nullptr;
    }

    /* Look at the file after a fault; ReportFault explains the fault
     * with what the last look found, as the file may change again. */
    bool FileCoversRegion() noexcept {
	lookError = file.Look(look);
	return lookError == 0 && look.size >= offset + Length();
    }
    /* Run copy (which says whether it succeeded) again while it faults
     * and the file is long enough again, for up to RETRY_TIME; not on a
     * full file system, where a hole cannot get its page. */
    template <typename Copy>
    bool Retrying(Copy copy) noexcept {
	if (copy()) {
	    return true;
	}
	const auto giveUp = std::chrono::steady_clock::now() + RETRY_TIME;
	fileChanging = false;
	bool covers = FileCoversRegion();
	const mmapunix::FileLook first = look;
	while (covers && !file.FileSystemFull()
		&& std::chrono::steady_clock::now() < giveUp) {
	    if (copy()) {
		return true;
	    }
	    covers = FileCoversRegion();
	    fileChanging = fileChanging || (lookError == 0 && look.ChangedSince(first));
	}
	return false;
    }

    /*
     * Copy up to count bytes from the position and advance past them.
     * Reads never wrap: at the end of the region they return 0 (EOF).
     * Nor do they read more than a region's worth between two seeks:
     * wrapping writes move the position back, and [fcopy $m $m] would
     * chase its own writes for ever.
     * A read that reaches a missing page returns the bytes before it;
     * one that starts there returns FAULTED (position unchanged).
     */
    long ReadBytes(char *dst, std::size_t count) noexcept {
	const std::size_t n = std::min({count, Length() - position,
		Length() - readSinceSeek});
	std::size_t got = 0;
	if (n > 0 && !Retrying([&] {
		got = CopyOut(dst, position, n);
		return got > 0;
	    })) {
	    return FAULTED;
	}
	position += got;
	readSinceSeek += got;
	return static_cast<long>(got);
    }

    /*
     * Copy count bytes in at the position, wrapping at the end: byte i
     * lands at (position + i) mod length. Of a write longer than the
     * region only the newest length bytes can survive, so only those are
     * copied. The position ends at (position + count) mod length; it does
     * not move when a copy faults. Returns 0, FAULTED or the errno of a
     * failed msync (-sync async or sync; the bytes are in place then).
     */
    int WriteBytes(const char *src, std::size_t count) noexcept {
	const std::size_t length = Length();
	std::size_t at = position % length;
	if (count > length) {
	    const std::size_t skipped = count - length;
	    src += skipped;
	    at = (at + skipped % length) % length;
	    count = length;
	}
	const std::size_t first = std::min(count, length - at);
	const std::size_t second = count - first;
	if (!Retrying([&] {
		return CopyIn(at, src, first)
			&& (second == 0 || CopyIn(0, src + first, second));
	    })) {
	    return FAULTED;
	}
	position = (at + count) % length;
	NoteWritten(at, first);
	NoteWritten(0, second);
	const int error = SyncAfterWrite(at, first);
	return error != 0 ? error : SyncAfterWrite(0, second);
    }

    /* Region bytes [at, at+count) changed: [mmap::sync] must cover them. */
    void NoteWritten(std::size_t at, std::size_t count) noexcept {
	if (count > 0) {
	    dirtyLow = std::min(dirtyLow, at);
	    dirtyHigh = std::max(dirtyHigh, at + count);
	}
    }

    /* What -sync asks of a write to [at, at+count): 0 or an errno value. */
    int SyncAfterWrite(std::size_t at, std::size_t count) const noexcept {
	return sync == SyncMode::None ? 0
		: mapping.SyncRange(at, count, sync == SyncMode::Sync);
    }

    /* [mmap::sync]: make everything written so far durable, now. */
    int SyncWritten() noexcept {
	if (dirtyLow >= dirtyHigh) {
	    return 0;
	}
	const int error = mapping.SyncRange(dirtyLow, dirtyHigh - dirtyLow, true);
	if (error == 0) {
	    dirtyLow = SIZE_MAX;
	    dirtyHigh = 0;
	}
	return error;
    }

    Tcl_Obj *FaultMessage(bool writing, int &error) const noexcept;
    int ReportFault(bool writing) noexcept;
    void ForgetReport() noexcept {
	if (lastReport != nullptr) {
	    Tcl_DecrRefCount(lastReport);
	    lastReport = nullptr;
	}
    }
    /*
     * Drop a fault report of ours that nobody picked up from an error
     * bypass (the channel's, or during [close] the interp's, where Tcl
     * moves it): [fcopy] reports faults from errno alone, and [tell],
     * [seek] or [close] would later find the message and fail with it.
     * Any other error found there is put back: a transform stacked on
     * the channel leaves its own errors in the same places.
     */
    template <typename Holder>
    void DropStaleReport(Holder holder, void (*take)(Holder, Tcl_Obj **),
	    void (*putBack)(Holder, Tcl_Obj *)) noexcept {
	Tcl_Obj *found = nullptr;
	take(holder, &found);
	if (found == nullptr) {
	    return;
	}
	if (found == lastReport) {
	    ForgetReport();
	} else {
	    putBack(holder, found);
	}
	Tcl_DecrRefCount(found);
    }
    void StartTimer() noexcept;
    void StopTimer() noexcept {
	if (timer != nullptr) {
	    Tcl_DeleteTimerHandler(timer);
	    timer = nullptr;
	}
    }
};

/*
 * An access touched a page with no file behind it, and trying again did
 * not help. Find out why (a file that shrank is the usual cause; one that
 * keeps being cut and regrown while the access is retried, another; a
 * write into a hole on a full disk, another; a page the disk cannot give
 * back, the last): a message naming the channel, and in error the errno
 * value that goes with it.
 */
Tcl_Obj *
MmapChannel::FaultMessage(bool writing, int &error) const noexcept
{
    const std::uint64_t needed = offset + Length();
    const bool found = lookError == 0;
    const bool lost = !found && lookError != ENODEV;	/* devices have no size */
    const bool shrank = found && look.size < needed;
    const bool full = writing && found && !shrank && file.FileSystemFull();
    error = full ? ENOSPC : EIO;
    const char *verb = writing ? "writing" : "reading";
    const char *name = Tcl_GetChannelName(channel);
    Tcl_Obj *message;
    if (shrank) {
	message = ShrankMessage(verb, "", name, look.size, needed);
    } else if (!full && fileChanging) {
	message = Tcl_ObjPrintf("error %s \"%s\": the file keeps changing"
		" under the mapping, and each retry of the copy faulted",
		verb, name);
    } else if (lost) {
	message = Tcl_ObjPrintf("error %s \"%s\": a page of the mapping has no"
		" file behind it, and the file can no longer be found to tell"
		" why", verb, name);
    } else {
	message = Tcl_ObjPrintf("error %s \"%s\": %s", verb, name,
		Tcl_ErrnoMsg(error));
    }
    return message;
}

/*
 * Leave the fault's message in the channel's error bypass, where [read],
 * [gets] and [puts] pick it up. Returns the errno value for the driver
 * proc to report.
 */
int
MmapChannel::ReportFault(bool writing) noexcept
{
    int error;
    Tcl_Obj *message = FaultMessage(writing, error);
    /* The bypass holds return options, then the message. */
    Tcl_Obj *report = WordList({"-code", "error", "-level", "0", "-errorcode"});
    Tcl_ListObjAppendElement(nullptr, report, PosixCode(error));
    Tcl_ListObjAppendElement(nullptr, report, message);
    ForgetReport();
    lastReport = report;
    Tcl_IncrRefCount(lastReport);
    Tcl_SetChannelError(channel, report);
    return error;
}

/*
 *----------------------------------------------------------------------
 * 2. The channel driver
 *----------------------------------------------------------------------
 */

NoThrow<Tcl_DriverBlockModeProc> MmapBlockMode;
NoThrow<Tcl_DriverClose2Proc> MmapClose2;
NoThrow<Tcl_DriverInputProc> MmapInput;
NoThrow<Tcl_DriverOutputProc> MmapOutput;
NoThrow<Tcl_DriverWideSeekProc> MmapWideSeek;
NoThrow<Tcl_DriverSetOptionProc> MmapSetOption;
NoThrow<Tcl_DriverGetOptionProc> MmapGetOption;
NoThrow<Tcl_DriverWatchProc> MmapWatch;
NoThrow<Tcl_DriverThreadActionProc> MmapThreadAction;
MayExitThread<Tcl_TimerProc> MmapTimerFired;
#if TCL_MAJOR_VERSION < 9
NoThrow<Tcl_DriverSeekProc> MmapSeek;
#endif

const Tcl_ChannelType mmapChannelType = {
    "mmap",			/* Type name. */
    TCL_CHANNEL_VERSION_5,	/* The only version Tcl 9 accepts. */
    TCL_CLOSE2PROC,		/* Close proc: close2Proc does it. */
    MmapInput,			/* Input proc. */
    MmapOutput,			/* Output proc. */
#if TCL_MAJOR_VERSION < 9
    MmapSeek,			/* Seek proc: Tcl 8.6 wants one. */
#else
    nullptr,			/* Seek proc: Tcl 9 uses only the wide one. */
#endif
    MmapSetOption,		/* Set option proc: -sync. */
    MmapGetOption,		/* Get option proc: -length -offset
				 * -shared -sync. */
    MmapWatch,			/* Watch proc: fileevent via a timer. */
    nullptr,			/* Get handle proc: there is no OS handle
				 * whose I/O would match the region. */
    MmapClose2,			/* Close2 proc. */
    MmapBlockMode,		/* Block mode proc. */
    nullptr,			/* Flush proc: writes are already in place. */
    nullptr,			/* Handler proc. */
    MmapWideSeek,		/* Wide seek proc. */
    MmapThreadAction,		/* Thread action proc: moves the timer. */
    nullptr,			/* Truncate proc: a region has a fixed size. */
};

/*
 * Memory never makes a reader wait, so both modes behave alike; the
 * channel accepts either so scripts written for sockets or pipes work.
 */
int
MmapBlockMode(void * /*instanceData*/, int /*mode*/) noexcept
{
    return 0;
}

int
MmapInput(void *instanceData, char *buf, int toRead, int *errorCodePtr) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    if (toRead <= 0) {
	return 0;
    }
    const long got = mc->ReadBytes(buf, static_cast<std::size_t>(toRead));
    if (got == MmapChannel::FAULTED) {
	*errorCodePtr = mc->ReportFault(false);
	return -1;
    }
    return static_cast<int>(got);
}

/*
 * Every byte is taken: a short count would make Tcl call again (or fail),
 * and a wrapping region always has room.
 */
int
MmapOutput(void *instanceData, const char *buf, int toWrite,
	int *errorCodePtr) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    if (toWrite <= 0) {
	return 0;
    }
    const int error = mc->WriteBytes(buf, static_cast<std::size_t>(toWrite));
    if (error != 0) {
	*errorCodePtr = error == MmapChannel::FAULTED ? mc->ReportFault(true) : error;
	return -1;
    }
    return toWrite;
}

/*
 * Targets outside [0, length] are refused rather than clamped, so a
 * script's arithmetic error shows. Tcl itself seeks backwards relative to
 * the current position when it drops read-ahead before a write.
 */
Tcl_WideInt
MmapWideSeek(void *instanceData, Tcl_WideInt offset, int seekMode,
	int *errorCodePtr) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    mc->DropStaleReport(mc->channel, Tcl_GetChannelError, Tcl_SetChannelError);
    const Tcl_WideInt length = static_cast<Tcl_WideInt>(mc->Length());
    Tcl_WideInt base;
    switch (seekMode) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = static_cast<Tcl_WideInt>(mc->position); break;
    case SEEK_END: base = length; break;
    default: *errorCodePtr = EINVAL; return -1;
    }
    /* base is within [0, length], so these comparisons cannot overflow. */
    if ((offset < 0 && offset < -base) || (offset > 0 && offset > length - base)) {
	*errorCodePtr = EINVAL;
	return -1;
    }
    mc->position = static_cast<std::size_t>(base + offset);
    mc->readSinceSeek = 0;
    return base + offset;
}

#if TCL_MAJOR_VERSION < 9
int
MmapSeek(void *instanceData, long offset, int seekMode, int *errorCodePtr) noexcept
{
    const Tcl_WideInt where =
	    MmapWideSeek(instanceData, offset, seekMode, errorCodePtr);
    if (where > INT_MAX) {
	*errorCodePtr = EOVERFLOW;
	return -1;
    }
    return static_cast<int>(where);
}
#endif

/*
 * Channel options. -length, -offset and -shared say how the channel was
 * made and are read-only; -sync says what a write does to make itself
 * durable. Names may be abbreviated to any unique prefix, as with Tcl's
 * own driver options.
 */
enum class ChannelOption { Length, Offset, Shared, Sync, Unknown };
const char *const channelOptionNames[] = {"-length", "-offset", "-shared", "-sync"};
constexpr int NUM_CHANNEL_OPTIONS = 4;
static_assert(std::size(channelOptionNames) == NUM_CHANNEL_OPTIONS);
constexpr const char *CHANNEL_OPTION_LIST = "length offset shared sync";

ChannelOption
LookupOption(const char *name) noexcept
{
    const std::size_t given = std::strlen(name);
    ChannelOption found = ChannelOption::Unknown;
    int matches = 0;
    for (int i = 0; i < NUM_CHANNEL_OPTIONS; i++) {
	if (given > 1 && std::strncmp(name, channelOptionNames[i], given) == 0) {
	    if (given == std::strlen(channelOptionNames[i])) {
		return static_cast<ChannelOption>(i);	/* exact beats prefix */
	    }
	    found = static_cast<ChannelOption>(i);
	    matches++;
	}
    }
    return matches == 1 ? found : ChannelOption::Unknown;
}

/* Tcl's message listing every option, plus our -errorcode. */
int
BadOption(Tcl_Interp *interp, const char *name) noexcept
{
    Tcl_BadChannelOption(interp, name, CHANNEL_OPTION_LIST);
    if (interp != nullptr) {
	Tcl_SetObjErrorCode(interp, WordList({"MMAP", "OPTION", "UNKNOWN", name}));
    }
    return TCL_ERROR;
}

int
MmapSetOption(void *instanceData, Tcl_Interp *interp, const char *optionName,
	const char *newValue) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    const ChannelOption option = LookupOption(optionName);
    if (option == ChannelOption::Unknown) {
	return BadOption(interp, optionName);
    }
    const char *fullName = channelOptionNames[static_cast<int>(option)];
    if (option != ChannelOption::Sync) {
	return Fail(interp, Tcl_ObjPrintf(
		"cannot set option \"%s\": it is read-only", fullName),
		{"MMAP", "OPTION", "READONLY", fullName});
    }
    for (int i = 0; syncModeNames[i] != nullptr; i++) {
	if (std::strcmp(newValue, syncModeNames[i]) == 0) {
	    mc->sync = static_cast<SyncMode>(i);
	    return TCL_OK;
	}
    }
    return Fail(interp, Tcl_ObjPrintf(
	    "bad value \"%s\" for option \"-sync\": must be none, async, or sync",
	    newValue), {"MMAP", "OPTION", "VALUE", "-sync"});
}

int
MmapGetOption(void *instanceData, Tcl_Interp *interp, const char *optionName,
	Tcl_DString *dsPtr) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    const Decimal length(mc->Length());
    const Decimal offset(mc->offset);
    const char *const values[] = {length.text, offset.text,
	    mc->shared ? "1" : "0", syncModeNames[static_cast<int>(mc->sync)]};
    if (optionName == nullptr || *optionName == '\0') {	/* all, as pairs */
	for (int i = 0; i < NUM_CHANNEL_OPTIONS; i++) {
	    Tcl_DStringAppendElement(dsPtr, channelOptionNames[i]);
	    Tcl_DStringAppendElement(dsPtr, values[i]);
	}
	return TCL_OK;
    }
    const ChannelOption option = LookupOption(optionName);
    if (option == ChannelOption::Unknown) {
	return BadOption(interp, optionName);
    }
    Tcl_DStringAppendElement(dsPtr, values[static_cast<int>(option)]);
    return TCL_OK;
}

/*
 * A region is always readable (data or EOF) and always writable, so a
 * fileevent needs no OS notifier: a zero-delay timer reports readiness,
 * and Tcl asks for it again (through this proc) after each notification
 * for as long as a handler is registered.
 */
void
MmapWatch(void *instanceData, int mask) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    mc->watchMask = mask & mc->direction;
    if (mc->watchMask != 0) {
	mc->StartTimer();
    } else {
	mc->StopTimer();
    }
}

void
MmapChannel::StartTimer() noexcept
{
    if (timer == nullptr) {
	timer = Tcl_CreateTimerHandler(0, MmapTimerFired, this);
    }
}

void
MmapTimerFired(void *clientData)	/* not noexcept: see MayExitThread */
{
    auto *mc = static_cast<MmapChannel *>(clientData);
    mc->timer = nullptr;
    /* A handler may close the channel: mc must not be touched after this. */
    Tcl_NotifyChannel(mc->channel, mc->watchMask);
}

/*
 * Timers belong to a thread: drop ours when the channel leaves a thread
 * and start a new one in the thread that receives it.
 */
void
MmapThreadAction(void *instanceData, int action) noexcept
{
    auto *mc = static_cast<MmapChannel *>(instanceData);
    if (action == TCL_CHANNEL_THREAD_REMOVE) {
	mc->StopTimer();
    } else if (mc->watchMask != 0) {
	mc->StartTimer();
    }
}

/*
 * Half-closes make no sense for a region; only a full close (flags 0)
 * releases it: msync for shared writable mappings, then munmap.
 */
int
MmapClose2(void *instanceData, Tcl_Interp *interp, int flags) noexcept
{
    if ((flags & (TCL_CLOSE_READ | TCL_CLOSE_WRITE)) != 0) {
	return EINVAL;
    }
    auto *mc = static_cast<MmapChannel *>(instanceData);
    /*
     * Tcl moves a fault report nobody picked up into the interp before
     * calling us; it belongs to an operation that already failed.
     */
    if (interp != nullptr) {
	mc->DropStaleReport(interp, Tcl_GetChannelErrorInterp,
		Tcl_SetChannelErrorInterp);
    }
    mc->StopTimer();
    const int error = mc->mapping.Close();
    delete mc;
    return error;
}

/*
 *----------------------------------------------------------------------
 * 3. The [mmap] command
 *----------------------------------------------------------------------
 */

constexpr const char *USAGE = "?-shared? ?-length bytes? ?-offset bytes? channelId";

/* The parsed command line. */
struct MapRequest {
    bool shared = false;
    bool haveLength = false;
    std::uint64_t length = 0;
    std::uint64_t offset = 0;
    Tcl_Obj *channelName = nullptr;
};
int
ParseArguments(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[],
	MapRequest &request) noexcept
{
    static const char *const options[] = {"-length", "-offset", "-shared", nullptr};
    enum Option { OPT_LENGTH, OPT_OFFSET, OPT_SHARED };

    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, USAGE);
	return TCL_ERROR;
    }
    const int last = objc - 1;	/* the channelId always comes last */
    for (int i = 1; i < last; i++) {
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[i], options, "option", 0,
		&index) != TCL_OK) {
	    const char *given = Tcl_GetString(objv[i]);
	    return Fail(interp, Tcl_ObjPrintf(
		    "bad option \"%s\": must be -length, -offset, or -shared",
		    given), {"MMAP", "OPTION", "UNKNOWN", given});
	}
	const char *option = options[index];
	if (index == OPT_SHARED) {
	    request.shared = true;
	    continue;
	}
	if (i + 1 >= last) {
	    return Fail(interp, Tcl_ObjPrintf(
		    "missing value for option \"%s\"", option),
		    {"MMAP", "OPTION", "NOVALUE", option});
	}
	Tcl_Obj *value = objv[++i];
	if (index == OPT_LENGTH) {
	    if (ParseSize(interp, option, value, request.length) != TCL_OK) {
		return TCL_ERROR;
	    }
	    if (request.length == 0) {
		return Fail(interp, Tcl_ObjPrintf(
			"bad value \"%s\" for option \"%s\": must be at least 1",
			Tcl_GetString(value), option),
			{"MMAP", "OPTION", "VALUE", option});
	    }
	    request.haveLength = true;
	} else if (ParseSize(interp, option, value, request.offset) != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    request.channelName = objv[last];
    return TCL_OK;
}

/*
 * Decide the byte range to map from the file's kind and size, filling in
 * the default length. Regular files must hold the whole range: touching
 * a mapped page past the end of a file kills the process with SIGBUS.
 */
int
CheckRange(Tcl_Interp *interp, const char *name,
	const mmapunix::FileInfo &info, MapRequest &request) noexcept
{
    const Decimal offset(request.offset);
    const Decimal length(request.length);
    const Decimal size(info.size);
    if (info.kind == mmapunix::FileKind::Device) {
	if (!request.haveLength) {
	    return Fail(interp, Tcl_ObjPrintf(
		    "channel \"%s\" is a device with no size: give -length",
		    name), {"MMAP", "RANGE", "NOLENGTH", name});
	}
	if (request.offset > static_cast<std::uint64_t>(INT64_MAX) - request.length) {
	    return Fail(interp, Tcl_ObjPrintf(
		    "-offset \"%s\" plus -length \"%s\" exceeds the largest file offset",
		    offset.text, length.text), {"MMAP", "RANGE", "OVERFLOW", name});
	}
	return TCL_OK;
    }
    if (info.size == 0) {
	return Fail(interp, Tcl_ObjPrintf(
		"cannot map channel \"%s\": the file is empty", name),
		{"MMAP", "RANGE", "EMPTY", name});
    }
    if (request.offset >= info.size) {
	return Fail(interp, Tcl_ObjPrintf(
		"-offset \"%s\" is past the end of channel \"%s\" (%s bytes)",
		offset.text, name, size.text), {"MMAP", "RANGE", "OFFSET", name});
    }
    if (!request.haveLength) {
	request.length = info.size - request.offset;
    } else if (request.length > info.size - request.offset) {
	return Fail(interp, Tcl_ObjPrintf(
		"-offset \"%s\" plus -length \"%s\" reaches past the end of channel"
		" \"%s\" (%s bytes)", offset.text, length.text, name, size.text),
		{"MMAP", "RANGE", "LENGTH", name});
    }
    return TCL_OK;
}

/*
 * The source's buffered output could not be written. A transform stacked
 * on it leaves its own error (return options, then the message) in the
 * channel's error bypass and errno says only EINVAL: report that error, as
 * [flush] does, rather than lose it or leave it for the source's [close].
 */
int
FailFlush(Tcl_Interp *interp, Tcl_Channel source, const char *name) noexcept
{
    const int error = Tcl_GetErrno();
    Tcl_Obj *context = Tcl_ObjPrintf("cannot map channel \"%s\": cannot flush it", name);
    Tcl_Obj *bypass = nullptr;
    Tcl_GetChannelError(source, &bypass);
    TclSize count = 0;
    Tcl_Obj **words = nullptr;
    if (bypass == nullptr
	    || Tcl_ListObjGetElements(nullptr, bypass, &count, &words) != TCL_OK
	    || count == 0) {
	if (bypass != nullptr) {
	    Tcl_DecrRefCount(bypass);
	}
	return FailPosix(interp, error, context);
    }
    Tcl_AppendPrintfToObj(context, ": %s", Tcl_GetString(words[count - 1]));
    Tcl_Obj *options = Tcl_NewListObj(count - 1, words);
    Tcl_Obj *key = Tcl_NewStringObj("-errorcode", -1);
    Tcl_Obj *errorCode = nullptr;
    Tcl_IncrRefCount(options);
    Tcl_IncrRefCount(key);
    if (Tcl_DictObjGet(nullptr, options, key, &errorCode) != TCL_OK
	    || errorCode == nullptr) {
	errorCode = PosixCode(error);
    }
    Tcl_SetObjResult(interp, context);
    Tcl_SetObjErrorCode(interp, errorCode);
    Tcl_DecrRefCount(key);
    Tcl_DecrRefCount(options);
    Tcl_DecrRefCount(bypass);
    return TCL_ERROR;
}

std::atomic<unsigned long> channelCounter{0};

/*
 * mmap ?-shared? ?-length bytes? ?-offset bytes? channelId
 *
 * Checks run from the cheapest to the most expensive, and nothing touches
 * the file before the mapping exists (but the source's own pending output,
 * which it would write anyway), so an error leaves it unchanged.
 */
int
MmapObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: see MayExitThread */
{
    MapRequest request;
    if (ParseArguments(interp, objc, objv, request) != TCL_OK) {
	return TCL_ERROR;
    }
    const char *name = Tcl_GetString(request.channelName);
    int sourceMode;
    Tcl_Channel source = Tcl_GetChannel(interp, name, &sourceMode);
    if (source == nullptr) {
	return TCL_ERROR;
    }
    /*
     * Tcl_GetChannel gives the bottom of a stack of transforms: the
     * channel whose descriptor holds the file's own bytes.
     */
    if (Tcl_GetChannelType(source) == &mmapChannelType) {
	return Fail(interp, Tcl_ObjPrintf(
		"channel \"%s\" is an mmap channel: map its file instead", name),
		{"MMAP", "CHANNEL", "MMAP", name});
    }

    /* Server sockets have neither direction: they are refused below. */
    if ((sourceMode & (TCL_READABLE | TCL_WRITABLE)) == TCL_WRITABLE) {
	return Fail(interp, Tcl_ObjPrintf(
		"channel \"%s\" is write-only: open it with mode r or r+ to map it",
		name), {"MMAP", "CHANNEL", "WRITEONLY", name});
    }

    /*
     * Asking a driver without a get-handle proc for a handle leaves an
     * error on the channel that its [close] would report later; look first.
     */
    void *handle = nullptr;
    if (Tcl_ChannelGetHandleProc(Tcl_GetChannelType(source)) == nullptr
	    || (Tcl_GetChannelHandle(source, TCL_READABLE, &handle) != TCL_OK
	    && Tcl_GetChannelHandle(source, TCL_WRITABLE, &handle) != TCL_OK)) {
	return Fail(interp, Tcl_ObjPrintf(
		"channel \"%s\" has no file descriptor to map", name),
		{"MMAP", "CHANNEL", "NOFD", name});
    }
    const int sourceFd = static_cast<int>(reinterpret_cast<std::intptr_t>(handle));
    /*
     * Bytes still in the source's buffer belong in the file before its
     * size is looked at; written later, at its [close], they would land
     * over what the script wrote through the mapping meanwhile.
     */
    if ((sourceMode & TCL_WRITABLE) != 0 && Tcl_Flush(source) != TCL_OK) {
	return FailFlush(interp, source, name);
    }
    mmapunix::FileInfo info;
    if (int error = mmapunix::DescribeFd(sourceFd, info)) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot map channel \"%s\"", name));
    }
    if (info.kind == mmapunix::FileKind::Other) {
	return Fail(interp, Tcl_ObjPrintf(
		"channel \"%s\" is not a file: only regular files and character"
		" devices can be mapped", name), {"MMAP", "CHANNEL", "NOTFILE", name});
    }
    if (CheckRange(interp, name, info, request) != TCL_OK) {
	return TCL_ERROR;
    }

    const bool writable = (sourceMode & TCL_WRITABLE) != 0;
    auto *mc = new (std::nothrow) MmapChannel;
    if (mc == nullptr) {
	return FailPosix(interp, ENOMEM, Tcl_ObjPrintf("cannot map channel \"%s\"", name));
    }
    mc->file.Remember(sourceFd, info);
    const int error = mmapunix::Mapping::Create(sourceFd, request.offset,
	    request.length, writable, request.shared, mc->mapping);
    if (error != 0) {
	delete mc;
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot map channel \"%s\"", name));
    }

    char channelName[32];
    std::snprintf(channelName, sizeof channelName, "mmap%lu",
	    channelCounter.fetch_add(1) + 1);
    mc->offset = request.offset;
    mc->shared = request.shared;
    mc->direction = TCL_READABLE | (writable ? TCL_WRITABLE : 0);
    mc->channel = Tcl_CreateChannel(&mmapChannelType, channelName, mc,
	    mc->direction);
    /*
     * Blocking stays on (Tcl's default): in non-blocking mode Tcl ends a
     * [read] at the first short driver read without looking for EOF, so
     * [eof] would stay 0 after reading everything. Memory never blocks.
     * No buffering: each puts lands in the region when it returns.
     */
    Tcl_SetChannelOption(nullptr, mc->channel, "-buffering", "none");
    Tcl_RegisterChannel(interp, mc->channel);
    Tcl_SetObjResult(interp, Tcl_NewStringObj(channelName, -1));
    return TCL_OK;
}

/*
 * The region behind the mmap channel named name, or nullptr with an error
 * in interp (no such channel, or another kind).
 */
MmapChannel *
LookupMmapChannel(Tcl_Interp *interp, const char *name) noexcept
{
    Tcl_Channel channel = Tcl_GetChannel(interp, name, nullptr);
    if (channel == nullptr) {
	return nullptr;
    }
    /* The bottom of a stack, as Tcl_GetChannel gives it, may be ours. */
    if (Tcl_GetChannelType(channel) != &mmapChannelType) {
	Fail(interp, Tcl_ObjPrintf("channel \"%s\" is not an mmap channel", name),
		{"MMAP", "CHANNEL", "NOTMMAP", name});
	return nullptr;
    }
    return static_cast<MmapChannel *>(Tcl_GetChannelInstanceData(channel));
}

/*
 * mmap::sync channelId
 *
 * Make everything written to the region so far durable: Tcl's own buffer
 * (if the script turned buffering on) is flushed into the region, then
 * the pages written since the last sync go to the disk with msync
 * (MS_SYNC). Private and read-only mappings have nothing to write.
 */
int
MmapSyncObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: see MayExitThread */
{
    if (objc != 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId");
	return TCL_ERROR;
    }
    const char *name = Tcl_GetString(objv[1]);
    MmapChannel *mc = LookupMmapChannel(interp, name);
    if (mc == nullptr) {
	return TCL_ERROR;
    }
    int error = 0;
    if ((mc->direction & TCL_WRITABLE) != 0 && Tcl_Flush(mc->channel) != TCL_OK) {
	error = Tcl_GetErrno();
    } else {
	error = mc->SyncWritten();
    }
    if (error != 0) {
	return FailPosix(interp, error,
		Tcl_ObjPrintf("cannot sync channel \"%s\"", name));
    }
    return TCL_OK;
}

/* Create [mmap] and [mmap::sync] in interp. */
int
CreateChannelCommands(Tcl_Interp *interp) noexcept
{
    return Tcl_CreateObjCommand(interp, "::mmap", MmapObjCmd, nullptr, nullptr)
	    != nullptr && Tcl_CreateObjCommand(interp, "::mmap::sync",
	    MmapSyncObjCmd, nullptr, nullptr) != nullptr ? TCL_OK : TCL_ERROR;
}

} // namespace

#endif /* MMAP_CHANNEL_H */

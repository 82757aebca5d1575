/*
 * mmap.cpp --
 *
 *	The mmap package: the [mmap] command turns an open file channel into a
 *	new channel (type "mmap") that reads and writes a memory-mapped region
 *	of that file. Reads stop at the end of the region; writes wrap around
 *	to its start, so the region works as a fixed-size, always-newest log.
 *
 *	The file is organised by concern:
 *	    1. the region: the state behind one channel and the byte copies;
 *	    2. the channel driver procs Tcl calls;
 *	    3. the [mmap] command: parsing, checking the source, mapping;
 *	       then, from generic/mmapAccess.h, the commands that reach a
 *	       region directly (mmap::read ... mmap::lock);
 *	    log objects: [mmap::log] (format and algorithms in mmapLog.h,
 *	       its file calls in unix/mmapLogFile.h);
 *	    4. package initialisation.
 *	Everything POSIX lives in unix/mmapUnix.h and unix/mmapShared.h;
 *	this file turns their errno results into channel and Tcl errors.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#include <tcl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "mmapUnix.h"
#include "mmapShared.h"
#include "mmapLog.h"
#include "mmapLogFile.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "1.0"
#endif

namespace {

/*
 * Every entry point Tcl calls is noexcept, so no exception can ever unwind
 * into Tcl's C frames. NoThrow<T> is Tcl's typedef T with noexcept added:
 * declaring each proc through it keeps the signature tied to Tcl's header.
 */
template <typename F> struct AddNoexcept;
template <typename R, typename... Args> struct AddNoexcept<R(Args...)> {
    using type = R(Args...) noexcept;
};
template <typename F> using NoThrow = typename AddNoexcept<F>::type;
/*
 * Except the entry points that can run a script: a fileevent handler
 * (MmapTimerFired), a transform stacked on a channel they flush (mmap,
 * mmap::sync), the body of mmap::lock, a TclX signal handler served by
 * mmap::wait, mmap::lock or a log's [wait] while they sleep.
 * [thread::exit] in such a script ends the thread with pthread_exit,
 * whose forced unwinding must pass through their frames: through a
 * noexcept frame it aborts the process. They throw nothing themselves.
 */
template <typename F> using MayExitThread = F;

/* Tcl's type for the length of a value or a list (int before Tcl 9). */
#if TCL_MAJOR_VERSION < 9
using TclSize = int;
#else
using TclSize = Tcl_Size;
#endif

/* Decimal text of a 64-bit count, for messages. */
struct Decimal {
    char text[24];
    explicit Decimal(std::uint64_t value) noexcept {
	std::snprintf(text, sizeof text, "%" PRIu64, value);
    }
};

/* A Tcl list made of the given words, for -errorcode values. */
Tcl_Obj *
WordList(std::initializer_list<const char *> words) noexcept
{
    Tcl_Obj *list = Tcl_NewObj();
    for (const char *word : words) {
	Tcl_ListObjAppendElement(nullptr, list, Tcl_NewStringObj(word, -1));
    }
    return list;
}

/* Tcl's -errorcode for an errno value: POSIX ENAME {message}. */
Tcl_Obj *
PosixCode(int error) noexcept
{
    Tcl_SetErrno(error);
    return WordList({"POSIX", Tcl_ErrnoId(), Tcl_ErrnoMsg(error)});
}

/*
 * Leave message and an -errorcode list made of code in interp; with no
 * interp (a channel option proc may get none) the message is dropped.
 */
int
Fail(Tcl_Interp *interp, Tcl_Obj *message,
	std::initializer_list<const char *> code) noexcept
{
    if (interp == nullptr) {
	Tcl_IncrRefCount(message);
	Tcl_DecrRefCount(message);
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, message);
    Tcl_SetObjErrorCode(interp, WordList(code));
    return TCL_ERROR;
}

/* Report a failed system call: "<context>: <errno text>", POSIX code. */
int
FailPosix(Tcl_Interp *interp, int error, Tcl_Obj *context) noexcept
{
    Tcl_SetObjErrorCode(interp, PosixCode(error));
    Tcl_AppendPrintfToObj(context, ": %s", Tcl_ErrnoMsg(error));
    Tcl_SetObjResult(interp, context);
    return TCL_ERROR;
}

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

    MmapChannel() noexcept = default;
    MmapChannel(const MmapChannel &) = delete;
    MmapChannel &operator=(const MmapChannel &) = delete;
    ~MmapChannel() { ForgetReport(); }

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
 * A fault's message when the file is shorter than its mapping needs; kind
 * is "" for a channel, "log " for a log.
 */
Tcl_Obj *
ShrankMessage(const char *verb, const char *kind, const char *name,
	std::uint64_t size, std::uint64_t needed) noexcept
{
    return Tcl_ObjPrintf("error %s %s\"%s\": the file shrank to %s bytes under"
	    " the mapping, which needs %s", verb, kind, name, Decimal(size).text,
	    Decimal(needed).text);
}

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

/*
 * Tcl_GetWideIntFromObj, refusing integers outside the signed 64-bit
 * range: Tcl 8.6 takes any of magnitude below 2^64 and wraps it, so
 * -18446744073709551615 would become 1 (Tcl 9 refuses them itself).
 */
int
GetWideInt(Tcl_Interp *interp, Tcl_Obj *value, Tcl_WideInt &out) noexcept
{
    if (Tcl_GetWideIntFromObj(interp, value, &out) != TCL_OK) {
	return TCL_ERROR;
    }
#if TCL_MAJOR_VERSION < 9
    /*
     * Parsing left the value's kind: in range it is never a bignum. Tcl
     * 8.6 does not register that type; a value known to be one shows it.
     */
    static const Tcl_ObjType *const bignumType = [] {
	Tcl_Obj *big = Tcl_NewStringObj("18446744073709551615", -1);
	Tcl_IncrRefCount(big);
	Tcl_WideInt wrapped;
	Tcl_GetWideIntFromObj(nullptr, big, &wrapped);
	const Tcl_ObjType *type = big->typePtr;
	Tcl_DecrRefCount(big);
	return type;
    }();
    if (value->typePtr == bignumType) {
	const char *tooLarge = "integer value too large to represent";
	return Fail(interp, Tcl_NewStringObj(tooLarge, -1),
		{"ARITH", "IOVERFLOW", tooLarge});
    }
#endif
    return TCL_OK;
}

/* A 64-bit non-negative integer, or false. */
bool
GetNonNegative(Tcl_Obj *value, std::uint64_t &out) noexcept
{
    Tcl_WideInt wide;
    if (GetWideInt(nullptr, value, wide) != TCL_OK || wide < 0) {
	return false;
    }
    out = static_cast<std::uint64_t>(wide);
    return true;
}

/* Parse the value of a numeric option: a 64-bit non-negative integer. */
int
ParseSize(Tcl_Interp *interp, const char *option, Tcl_Obj *value,
	std::uint64_t &out) noexcept
{
    if (!GetNonNegative(value, out)) {
	return Fail(interp, Tcl_ObjPrintf(
		"bad value \"%s\" for option \"%s\": must be a non-negative integer",
		Tcl_GetString(value), option), {"MMAP", "OPTION", "VALUE", option});
    }
    return TCL_OK;
}

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

} // namespace

/* The region commands; the log's [wait] shares their way of sleeping. */
#include "mmapAccess.h"

namespace {

/*
 *----------------------------------------------------------------------
 * Log objects: [mmap::log open] and the commands it returns
 *
 * The format and every algorithm are in generic/mmapLog.h; this part
 * parses arguments, creates and checks the file, maps it, converts
 * messages between Tcl strings and UTF-8, and turns outcomes into Tcl
 * errors.
 *----------------------------------------------------------------------
 */

struct LogObject {
    std::string path;			/* as given, for messages */
    mmapunix::FileIdentity file;	/* which file, to tell it shrank */
    mmapunix::Mapping mapping;		/* the whole file */
    mmapunix::Mapping wakeHeader;	/* -readonly: the header, writable,
					 * so [wait] can announce itself */
    mmaplog::Geometry geometry;
    mmaplog::Log log;
    bool readonly = false;
    Tcl_Command token = nullptr;
    int waiting = 0;			/* [wait]s and blocked [append]s under
					 * way: a signal handler they serve
					 * may close the log */
    bool deleted = false;		/* its command is gone; freed when no
					 * [wait] is left */

    LogObject(std::string &&where, mmapunix::Mapping &&map,
	    const mmaplog::Geometry &g, bool ro) noexcept
	: path(std::move(where)), mapping(std::move(map)),
	  geometry(g), log(mapping.data(), mapping.length(), g), readonly(ro) {}
};

std::atomic<unsigned long> logCounter{0};

/* Whether the log's file is now shorter than the log (now: its look). */
bool
LogFileShrank(const LogObject &lo, mmapunix::FileLook &now) noexcept
{
    return lo.file.Look(now) == 0 && now.size < lo.geometry.fileSize;
}

/*
 * The error for a fault: a page of the log's file is gone. The channel's
 * wording, and POSIX EIO, as for a shrunk mapped file.
 */
int
FailLogFault(Tcl_Interp *interp, const LogObject &lo, const char *verb) noexcept
{
    mmapunix::FileLook now;
    Tcl_Obj *message = LogFileShrank(lo, now)
	    ? ShrankMessage(verb, "log ", lo.path.c_str(), now.size, lo.geometry.fileSize)
	    : Tcl_ObjPrintf("error %s log \"%s\": %s", verb, lo.path.c_str(),
		    Tcl_ErrnoMsg(EIO));
    Tcl_SetObjErrorCode(interp, PosixCode(EIO));
    Tcl_SetObjResult(interp, message);
    return TCL_ERROR;
}

/*
 * A file cut inside a page reads as zeros up to that page's end, not as
 * a fault: the damage a read met there is the shrink.
 */
mmaplog::Status
ShrinkOrDamage(const LogObject &lo, mmaplog::Status status,
	const mmaplog::ReadResult &result) noexcept
{
    mmapunix::FileLook now;
    return status == mmaplog::Status::Ok && result.damaged > 0 && LogFileShrank(lo, now)
	    ? mmaplog::Status::Fault : status;
}

int
FailGarbled(Tcl_Interp *interp, const char *path) noexcept
{
    return Fail(interp, Tcl_ObjPrintf("log \"%s\" is damaged: its committed state"
	    " fails its checks", path), {"MMAP", "LOG", "DAMAGED", path});
}

/* Report a Status other than Ok from the format layer. */
int
FailLogStatus(Tcl_Interp *interp, const LogObject &lo, mmaplog::Status status,
	const char *verb, int error = 0) noexcept
{
    switch (status) {
    case mmaplog::Status::Fault:
	return FailLogFault(interp, lo, verb);
    case mmaplog::Status::Garbled: {
	/* A file cut inside its header page reads as zeros there, no fault. */
	mmapunix::FileLook now;
	return LogFileShrank(lo, now) ? FailLogFault(interp, lo, verb)
		: FailGarbled(interp, lo.path.c_str());
    }
    case mmaplog::Status::NoMemory:
	error = ENOMEM;
	break;
    default:
	break;
    }
    return FailPosix(interp, error != 0 ? error : EIO,
	    Tcl_ObjPrintf("error %s log \"%s\"", verb, lo.path.c_str()));
}

/*
 * Messages are stored as standard UTF-8, readable by any program. Tcl's
 * own string bytes differ from it only in NUL, which Tcl writes C0 80,
 * and, in builds of Tcl 8.6 that keep characters beyond the BMP as
 * surrogate pairs, in those (ED Ax xx ED Bx xx). A message holding
 * neither lead byte is stored as it is; the rest is rewritten here (Tcl
 * 8.6's utf-8 encoding would turn surrogate pairs into U+FFFD). Reading
 * goes through Tcl's utf-8 encoding only for payloads holding NUL or a
 * 4-byte character.
 */
bool
NeedsStandardForm(const char *bytes, std::size_t length) noexcept
{
    return std::memchr(bytes, 0xC0, length) != nullptr
	    || std::memchr(bytes, 0xED, length) != nullptr;
}

void
AppendStandardUtf8(const char *bytes, std::size_t length, std::string &out)
{
    const auto *in = reinterpret_cast<const unsigned char *>(bytes);
    for (std::size_t i = 0; i < length; i++) {
	if (in[i] == 0xC0 && i + 1 < length && in[i + 1] == 0x80) {
	    out.push_back('\0');
	    i++;
	} else if (in[i] == 0xED && i + 5 < length && (in[i + 1] & 0xF0) == 0xA0
		&& in[i + 3] == 0xED && (in[i + 4] & 0xF0) == 0xB0) {
	    const std::uint32_t high = ((in[i + 1] & 0x0Fu) << 6) | (in[i + 2] & 0x3Fu);
	    const std::uint32_t low = ((in[i + 4] & 0x0Fu) << 6) | (in[i + 5] & 0x3Fu);
	    const std::uint32_t code = 0x10000 + (high << 10) + low;
	    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
	    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
	    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
	    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
	    i += 5;
	} else {
	    out.push_back(static_cast<char>(in[i]));
	}
    }
}

Tcl_Obj *
MessageObj(const char *bytes, std::size_t length) noexcept
{
    const auto *in = reinterpret_cast<const unsigned char *>(bytes);
    bool plain = true;
    for (std::size_t i = 0; i < length && plain; i++) {
	plain = in[i] != 0 && in[i] < 0xF0;
    }
    if (plain) {
	return Tcl_NewStringObj(bytes, static_cast<TclSize>(length));
    }
    static const Tcl_Encoding utf8 = Tcl_GetEncoding(nullptr, "utf-8");
    Tcl_DString ds;
    Tcl_ExternalToUtfDString(utf8, bytes, static_cast<TclSize>(length), &ds);
    Tcl_Obj *result = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return result;
}

/* Parse a log method's non-negative integer argument (not an option's value). */
int
ParseLogNumber(Tcl_Interp *interp, const char *what, Tcl_Obj *value,
	std::uint64_t &out) noexcept
{
    if (!GetNonNegative(value, out)) {
	return Fail(interp, Tcl_ObjPrintf(
		"bad value \"%s\" for \"%s\": must be a non-negative integer",
		Tcl_GetString(value), what), {"MMAP", "LOG", "VALUE", what});
    }
    return TCL_OK;
}

/*
 * Keeps a log object alive while a command that serves signal handlers
 * (which may delete its command) is under way; the last one frees it.
 */
class LogInUse {
public:
    explicit LogInUse(LogObject &lo) noexcept : lo_(lo) { lo_.waiting++; }
    ~LogInUse() {
	if (--lo_.waiting == 0 && lo_.deleted) {
	    delete &lo_;
	}
    }
    LogInUse(const LogInUse &) = delete;
    LogInUse &operator=(const LogInUse &) = delete;

private:
    LogObject &lo_;
};

/* After serving signal handlers: whether one of them closed the log. */
int
FailIfClosed(Tcl_Interp *interp, const LogObject &lo, const char *doing) noexcept
{
    if (!lo.deleted && lo.mapping.length() != 0) {
	return TCL_OK;
    }
    return Fail(interp, Tcl_ObjPrintf("log \"%s\" was closed while %s", lo.path.c_str(),
	    doing), {"MMAP", "LOG", "CLOSED", lo.path.c_str()});
}

/*
 * $log append message ?message ...?
 *
 * Blocked behind another appender, it serves signal handlers and the
 * time limit as [wait] does (the holder may be a stopped process).
 */
int
LogAppend(Tcl_Interp *interp, LogObject &lo, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: ServeSignals */
{
    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "message ?message ...?");
	return TCL_ERROR;
    }
    if (lo.readonly) {
	return Fail(interp, Tcl_ObjPrintf("log \"%s\" was opened -readonly: cannot"
		" append", lo.path.c_str()), {"MMAP", "LOG", "READONLY", lo.path.c_str()});
    }
    const std::size_t count = static_cast<std::size_t>(objc - 2);
    /* Most appends carry a message or two: no heap for those. */
    constexpr std::size_t ON_STACK = 8;
    mmaplog::Message onStack[ON_STACK];
    std::size_t startsOnStack[ON_STACK];
    std::vector<mmaplog::Message> onHeap;
    std::vector<std::size_t> startsOnHeap;
    std::string converted;	/* standard forms, one after the other */
    mmaplog::Message *messages = onStack;
    std::size_t *starts = startsOnStack;
    try {
	if (count > ON_STACK) {
	    onHeap.resize(count);
	    startsOnHeap.resize(count);
	    messages = onHeap.data();
	    starts = startsOnHeap.data();
	}
	for (std::size_t i = 0; i < count; i++) {
	    TclSize length;
	    const char *bytes = Tcl_GetStringFromObj(objv[i + 2], &length);
	    messages[i] = {reinterpret_cast<const unsigned char *>(bytes),
		    static_cast<std::size_t>(length)};
	    starts[i] = SIZE_MAX;
	    if (NeedsStandardForm(bytes, messages[i].length)) {
		starts[i] = converted.size();
		AppendStandardUtf8(bytes, messages[i].length, converted);
		messages[i].length = converted.size() - starts[i];
	    }
	}
    } catch (const std::bad_alloc &) {
	return FailPosix(interp, ENOMEM, Tcl_ObjPrintf("error appending to log \"%s\"",
		lo.path.c_str()));
    }
    /* Only now that converted has stopped growing: point into it. */
    for (std::size_t i = 0; i < count; i++) {
	if (starts[i] != SIZE_MAX) {
	    messages[i].bytes = reinterpret_cast<const unsigned char *>(
		    converted.data() + starts[i]);
	}
    }
    for (std::size_t i = 0; i < count; i++) {
	const mmaplog::Message &m = messages[i];
	if (m.length > lo.log.MaxMessage()) {
	    return Fail(interp, Tcl_ObjPrintf("message of %s bytes is too large for log"
		    " \"%s\": at most %s bytes fit", Decimal(m.length).text,
		    lo.path.c_str(), Decimal(lo.log.MaxMessage()).text),
		    {"MMAP", "LOG", "TOOLARGE", lo.path.c_str()});
	}
    }
    std::uint64_t last = 0;
    int error = 0;
    bool slept = false;
    const LogInUse inUse(lo);
    for (;;) {
	const mmaplog::Status status = lo.log.Append(messages, count, mmaplog::NowMicros(),
		last, error, slept, [interp] { return SignalsDue(interp); });
	if (status == mmaplog::Status::Ok) {
	    Tcl_SetObjResult(interp, Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(last)));
	    return TCL_OK;
	}
	if (status != mmaplog::Status::Interrupted) {
	    return FailLogStatus(interp, lo, status, "appending to", error);
	}
	if (const int code = ServeSignals(interp)) {
	    return code;
	}
	if (FailIfClosed(interp, lo, "appending") != TCL_OK) {
	    return TCL_ERROR;
	}
    }
}

/* $log read ?-from seq? ?-count n? ?-last n? */
int
LogRead(Tcl_Interp *interp, LogObject &lo, int objc, Tcl_Obj *const objv[]) noexcept
{
    static const char *const options[] = {"-count", "-from", "-last", nullptr};
    mmaplog::ReadRequest request;
    /* Another program (or a Tcl 9 writer) may store longer messages than
     * a Tcl 8.6 value can hold. */
    request.longest = static_cast<std::uint64_t>(std::numeric_limits<TclSize>::max());
    std::uint64_t *targets[] = {&request.count, &request.from, &request.last};
    for (int i = 2; i < objc; i += 2) {
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[i], options, "option", 0, &index) != TCL_OK) {
	    const char *given = Tcl_GetString(objv[i]);
	    return Fail(interp, Tcl_ObjPrintf(
		    "bad option \"%s\": must be -count, -from, or -last", given),
		    {"MMAP", "OPTION", "UNKNOWN", given});
	}
	if (i + 1 >= objc) {
	    return Fail(interp, Tcl_ObjPrintf("missing value for option \"%s\"",
		    options[index]), {"MMAP", "OPTION", "NOVALUE", options[index]});
	}
	if (ParseSize(interp, options[index], objv[i + 1], *targets[index]) != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    /*
     * The list is built from an array sized for the records expected, and
     * records the writers overwrote while they were read are dropped from
     * its front afterwards.
     */
    std::vector<Tcl_Obj *> words;
    mmaplog::ReadResult result;
    mmaplog::Status status;
    std::size_t stale = 0;
    try {
	mmaplog::State now;
	if ((status = lo.log.Snapshot(now)) == mmaplog::Status::Ok) {
	    const std::uint64_t from = std::max(request.from, now.tailSeq);
	    const std::uint64_t expected = std::min({request.count, request.last,
		    from < now.nextSeq ? now.nextSeq - from : 0});
	    words.reserve(3 * static_cast<std::size_t>(expected));
	    status = lo.log.Read(request, result, [&](std::uint64_t seq, std::int64_t time,
		    const char *bytes, std::uint32_t length) {
		Tcl_Obj *triple[] = {Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(seq)),
			Tcl_NewWideIntObj(time), MessageObj(bytes, length)};
		for (Tcl_Obj *word : triple) {
		    Tcl_IncrRefCount(word);
		    words.push_back(word);
		}
		return true;
	    });
	}
	while (3 * stale < words.size()) {
	    Tcl_WideInt seq;
	    Tcl_GetWideIntFromObj(nullptr, words[3 * stale], &seq);
	    if (static_cast<std::uint64_t>(seq) >= result.state.tailSeq) {
		break;
	    }
	    stale++;
	}
    } catch (const std::bad_alloc &) {
	status = mmaplog::Status::NoMemory;
    }
    status = ShrinkOrDamage(lo, status, result);
    if (status == mmaplog::Status::Ok) {
	Tcl_SetObjResult(interp, Tcl_NewListObj(static_cast<TclSize>(words.size() - 3 * stale),
		words.data() + 3 * stale));
    }
    for (Tcl_Obj *word : words) {
	Tcl_DecrRefCount(word);
    }
    if (status == mmaplog::Status::TooLong) {
	return Fail(interp, Tcl_ObjPrintf("record %s of log \"%s\" has %s bytes: more than"
		" a Tcl value can hold", Decimal(result.longSeq).text, lo.path.c_str(),
		Decimal(result.longLength).text), {"MMAP", "LOG", "TOOLONG", lo.path.c_str()});
    }
    return status == mmaplog::Status::Ok ? TCL_OK
	    : FailLogStatus(interp, lo, status, "reading");
}

/* $log info: a dict. Walks and verifies the whole log. */
int
LogInfo(Tcl_Interp *interp, LogObject &lo) noexcept
{
    try {
	mmaplog::ReadResult result;
	std::vector<std::uint64_t> seqs;
	mmaplog::Status status = lo.log.Read(mmaplog::ReadRequest(), result,
		[&](std::uint64_t seq, std::int64_t, const char *, std::uint32_t) {
	    seqs.push_back(seq);
	    return true;
	});
	status = ShrinkOrDamage(lo, status, result);
	if (status != mmaplog::Status::Ok) {
	    return FailLogStatus(interp, lo, status, "reading");
	}
	const auto kept = std::lower_bound(seqs.begin(), seqs.end(), result.state.tailSeq);
	const std::uint64_t next = result.state.nextSeq;
	const std::uint64_t oldest = kept == seqs.end() ? next : *kept;
	const auto records = static_cast<std::uint64_t>(seqs.end() - kept);
	const std::pair<const char *, Tcl_Obj *> entries[] = {
	    {"size", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(lo.geometry.fileSize))},
	    {"oldest", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(oldest))},
	    {"next", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(next))},
	    {"records", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(records))},
	    {"damaged", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(result.damaged))},
	    {"maxmessage", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(lo.log.MaxMessage()))},
	    {"readonly", Tcl_NewBooleanObj(lo.readonly)},
	    {"version", Tcl_NewIntObj(static_cast<int>(mmaplog::VERSION))},
	};
	Tcl_Obj *dict = Tcl_NewDictObj();
	for (const auto &entry : entries) {
	    Tcl_DictObjPut(nullptr, dict, Tcl_NewStringObj(entry.first, -1), entry.second);
	}
	Tcl_SetObjResult(interp, dict);
    } catch (const std::bad_alloc &) {
	return FailLogStatus(interp, lo, mmaplog::Status::NoMemory, "reading");
    }
    return TCL_OK;
}

/*
 * A -readonly log maps the file read-only, but [wait] must count itself
 * among the waiters so that appenders wake it: map the header writable
 * from a second descriptor, if the process may write the file. Returns
 * the header to use, or nullptr (the caller then waits in slices).
 */
unsigned char *
WakeHeader(LogObject &lo) noexcept
{
    if (!lo.readonly) {
	return lo.mapping.data();
    }
    /* By its absolute name where known: the process may have changed
     * directory since it opened the log. */
    const char *name = lo.file.Path()[0] != '\0' ? lo.file.Path() : lo.path.c_str();
    if (lo.wakeHeader.length() == 0 && mmapunix::MapStartWritable(name, lo.file,
	    mmaplog::HEADER_SIZE, lo.wakeHeader) != 0) {
	return nullptr;
    }
    return lo.wakeHeader.data();
}

/*
 * $log wait seq ?milliseconds?
 *
 * Sleeps in slices, and between them serves Tcl's signal handlers and
 * time limit, as mmap::wait does. A handler may close the log: the
 * object outlives its command while a wait is under way, and the wait
 * then ends with an error.
 */
int
LogWait(Tcl_Interp *interp, LogObject &lo, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: ServeSignals */
{
    if (objc != 3 && objc != 4) {
	Tcl_WrongNumArgs(interp, 2, objv, "seq ?milliseconds?");
	return TCL_ERROR;
    }
    std::uint64_t seq = 0, ms = 0;
    if (ParseLogNumber(interp, "seq", objv[2], seq) != TCL_OK
	    || (objc == 4 && ParseLogNumber(interp, "milliseconds", objv[3], ms) != TCL_OK)) {
	return TCL_ERROR;
    }
    const WaitDeadline deadline(objc == 3, ms);
    const LogInUse inUse(lo);
    int code = TCL_OK;
    for (;;) {
	const std::int64_t slice = deadline.NextSleep();
	bool arrived = false;
	int error = 0;
	const mmaplog::Status status = lo.log.Wait(seq, static_cast<long>(slice),
		WakeHeader(lo), arrived, error);
	if (status != mmaplog::Status::Ok || error != 0) {
	    code = FailLogStatus(interp, lo, status, "waiting on", error);
	    break;
	}
	if (arrived || deadline.NextSleep() == 0) {
	    Tcl_SetObjResult(interp, Tcl_NewBooleanObj(arrived));
	    break;
	}
	if ((code = ServeSignals(interp)) != TCL_OK
		|| (code = FailIfClosed(interp, lo, "waiting")) != TCL_OK) {
	    break;
	}
    }
    return code;
}

void
LogDeleted(void *clientData) noexcept
{
    auto *lo = static_cast<LogObject *>(clientData);
    lo->deleted = true;
    if (lo->waiting == 0) {
	delete lo;
    }
}

/* $log method ?arg ...? */
int
LogObjCmd(void *clientData, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: LogWait */
{
    static const char *const methods[] = {"append", "close", "info", "read", "sync",
	    "wait", nullptr};
    enum Method { M_APPEND, M_CLOSE, M_INFO, M_READ, M_SYNC, M_WAIT };
    auto &lo = *static_cast<LogObject *>(clientData);
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "method ?arg ...?");
	return TCL_ERROR;
    }
    int method;
    if (Tcl_GetIndexFromObj(nullptr, objv[1], methods, "method", 0, &method) != TCL_OK) {
	const char *given = Tcl_GetString(objv[1]);
	return Fail(interp, Tcl_ObjPrintf("bad method \"%s\": must be append, close,"
		" info, read, sync, or wait", given), {"MMAP", "LOG", "METHOD", given});
    }
    if ((method == M_CLOSE || method == M_INFO || method == M_SYNC) && objc != 2) {
	Tcl_WrongNumArgs(interp, 2, objv, nullptr);
	return TCL_ERROR;
    }
    switch (method) {
    case M_APPEND: return LogAppend(interp, lo, objc, objv);
    case M_INFO: return LogInfo(interp, lo);
    case M_READ: return LogRead(interp, lo, objc, objv);
    case M_WAIT: return LogWait(interp, lo, objc, objv);
    default: break;
    }
    /* sync and close: make the records durable; close also unmaps. */
    const int error = method == M_SYNC
	    ? lo.mapping.SyncRange(0, lo.mapping.length(), true) : lo.mapping.Close();
    const std::string path = lo.path;
    if (method == M_CLOSE) {
	Tcl_DeleteCommandFromToken(interp, lo.token);	/* frees lo */
    }
    if (error != 0) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot sync log \"%s\"",
		path.c_str()));
    }
    return TCL_OK;
}

/* Why an existing file is not a log we can open, as a Tcl error. */
int
FailHeader(Tcl_Interp *interp, const char *path, mmaplog::HeaderCheck check,
	const unsigned char *fixed, std::uint64_t fileSize) noexcept
{
    switch (check) {
    case mmaplog::HeaderCheck::NotLog:
	return Fail(interp, Tcl_ObjPrintf("file \"%s\" is not a log: it does not start"
		" with the mmap-log magic", path), {"MMAP", "LOG", "NOTLOG", path});
    case mmaplog::HeaderCheck::Version:
	return Fail(interp, Tcl_ObjPrintf("log \"%s\" has format version %u: this"
		" package reads version %u", path, mmaplog::Load32(fixed + mmaplog::H_VERSION),
		mmaplog::VERSION), {"MMAP", "LOG", "VERSION", path});
    case mmaplog::HeaderCheck::SizeMismatch:
	return Fail(interp, Tcl_ObjPrintf("log \"%s\" is damaged: its header says %s"
		" bytes but the file has %s", path,
		Decimal(mmaplog::Load64(fixed + mmaplog::H_FILE_SIZE)).text,
		Decimal(fileSize).text), {"MMAP", "LOG", "DAMAGED", path});
    default:
	return Fail(interp, Tcl_ObjPrintf("log \"%s\" is damaged: its header fails"
		" its checks", path), {"MMAP", "LOG", "DAMAGED", path});
    }
}

int
FailNotRegular(Tcl_Interp *interp, const char *name) noexcept
{
    return Fail(interp, Tcl_ObjPrintf("file \"%s\" is not a log: it is not a regular"
	    " file", name), {"MMAP", "LOG", "NOTLOG", name});
}

/*
 * Open an existing log: check it is one, with the size asked for, and
 * map it. Nothing is written to the file.
 */
int
OpenLogFile(Tcl_Interp *interp, const std::string &path, bool readonly, bool haveSize,
	std::uint64_t size, int fd, LogObject *&out) noexcept
{
    const char *name = path.c_str();
    mmapunix::FileInfo info;
    if (int error = mmapunix::DescribeFd(fd, info)) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    if (info.kind != mmapunix::FileKind::Regular) {
	return FailNotRegular(interp, name);
    }
    unsigned char fixed[mmaplog::H_FIXED] = {};
    std::size_t got = 0;
    if (int error = mmapunix::ReadStart(fd, fixed, sizeof fixed, got)) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    mmaplog::Geometry geometry;
    mmaplog::HeaderCheck check = got < sizeof fixed
	    ? mmaplog::HeaderCheck::NotLog : mmaplog::CheckHeader(fixed, info.size, geometry);
    if (check == mmaplog::HeaderCheck::NotLog && got >= sizeof mmaplog::MAGIC
	    && std::memcmp(fixed, mmaplog::MAGIC, sizeof mmaplog::MAGIC) == 0) {
	check = mmaplog::HeaderCheck::Damaged;
    }
    if (check != mmaplog::HeaderCheck::Ok) {
	return FailHeader(interp, name, check, fixed, info.size);
    }
    if (haveSize && size != info.size) {
	return Fail(interp, Tcl_ObjPrintf("log \"%s\" has %s bytes, not the %s given"
		" with -size", name, Decimal(info.size).text, Decimal(size).text),
		{"MMAP", "LOG", "SIZE", name});
    }
    mmapunix::Mapping mapping;
    if (int error = mmapunix::Mapping::Create(fd, 0, info.size, !readonly, true,
	    mapping)) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    /* Appenders in several processes each walk through every page. */
    mapping.AdviseHugePages();
    auto *lo = new (std::nothrow) LogObject(std::string(path), std::move(mapping),
	    geometry, readonly);
    if (lo == nullptr) {
	return FailPosix(interp, ENOMEM, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    lo->file.Remember(fd, info);
    mmaplog::State state;
    const mmaplog::Status status = lo->log.Snapshot(state);
    if (status != mmaplog::Status::Ok) {
	FailLogStatus(interp, *lo, status, "opening");
	delete lo;
	return TCL_ERROR;
    }
    out = lo;
    return TCL_OK;
}

/* mmap::log open path ?-size bytes? ?-readonly? */
int
LogOpen(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]) noexcept
{
    static const char *const options[] = {"-readonly", "-size", nullptr};
    enum Option { OPT_READONLY, OPT_SIZE };
    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "path ?-size bytes? ?-readonly?");
	return TCL_ERROR;
    }
    bool readonly = false, haveSize = false;
    std::uint64_t size = 0;
    for (int i = 3; i < objc; i++) {
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[i], options, "option", 0, &index) != TCL_OK) {
	    const char *given = Tcl_GetString(objv[i]);
	    return Fail(interp, Tcl_ObjPrintf(
		    "bad option \"%s\": must be -readonly or -size", given),
		    {"MMAP", "OPTION", "UNKNOWN", given});
	}
	if (index == OPT_READONLY) {
	    readonly = true;
	    continue;
	}
	if (i + 1 >= objc) {
	    return Fail(interp, Tcl_NewStringObj("missing value for option \"-size\"", -1),
		    {"MMAP", "OPTION", "NOVALUE", "-size"});
	}
	if (ParseSize(interp, "-size", objv[++i], size) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (size < mmaplog::MIN_FILE_SIZE) {
	    return Fail(interp, Tcl_ObjPrintf("bad value \"%s\" for option \"-size\": a log"
		    " needs at least %s bytes", Tcl_GetString(objv[i]),
		    Decimal(mmaplog::MIN_FILE_SIZE).text), {"MMAP", "OPTION", "VALUE", "-size"});
	}
	haveSize = true;
    }
    Tcl_DString native;
    std::string path;
    try {
	Tcl_UtfToExternalDString(nullptr, Tcl_GetString(objv[2]), -1, &native);
	path.assign(Tcl_DStringValue(&native), Tcl_DStringLength(&native));
	Tcl_DStringFree(&native);
    } catch (const std::bad_alloc &) {
	return FailPosix(interp, ENOMEM, Tcl_NewStringObj("cannot open log", -1));
    }
    /* The system would take the name up to the NUL: another file. */
    if (path.find('\0') != std::string::npos) {
	return FailPosix(interp, EINVAL, Tcl_ObjPrintf("cannot open log \"%s\"",
		Tcl_GetString(objv[2])));
    }
    const char *name = path.c_str();
    /* Not even opened: opening a device can act (a watchdog arms, a tape
     * rewinds, a FIFO's blocked writer goes on). */
    if (mmapunix::NamesNonRegular(name)) {
	return FailNotRegular(interp, name);
    }
    /* A creator that loses the race opens the winner's file. */
    mmapunix::OwnedFd fd;
    int error = 0;
    for (int round = 0; round < 3; round++) {
	error = mmapunix::OpenFile(name, !readonly, fd);
	if (error != ENOENT || readonly) {
	    break;
	}
	if (!haveSize) {
	    return Fail(interp, Tcl_ObjPrintf("cannot create log \"%s\": -size is required"
		    " for a new log", name), {"MMAP", "LOG", "NOSIZE", name});
	}
	unsigned char page[mmaplog::HEADER_SIZE];
	mmaplog::FormatHeader(page, size);
	const int created = mmapunix::CreateFileAtomically(path, size, page, sizeof page);
	if (created != 0 && created != EEXIST) {
	    return FailPosix(interp, created, Tcl_ObjPrintf("cannot create log \"%s\"", name));
	}
    }
    if (error != 0) {
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    LogObject *lo = nullptr;
    if (OpenLogFile(interp, path, readonly, haveSize, size, fd.get(), lo) != TCL_OK) {
	return TCL_ERROR;
    }
    char command[40];
    std::snprintf(command, sizeof command, "::mmap::log%lu", logCounter.fetch_add(1) + 1);
    lo->token = Tcl_CreateObjCommand(interp, command, LogObjCmd, lo, LogDeleted);
    Tcl_SetObjResult(interp, Tcl_NewStringObj(command, -1));
    return TCL_OK;
}

/* mmap::log open ... (the only subcommand, for now) */
int
MmapLogObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "open path ?-size bytes? ?-readonly?");
	return TCL_ERROR;
    }
    if (std::strcmp(Tcl_GetString(objv[1]), "open") != 0) {
	const char *given = Tcl_GetString(objv[1]);
	return Fail(interp, Tcl_ObjPrintf("bad subcommand \"%s\": must be open", given),
		{"MMAP", "LOG", "SUBCOMMAND", given});
    }
    return LogOpen(interp, objc, objv);
}

} // namespace

/*
 *----------------------------------------------------------------------
 * 4. Package initialisation
 *----------------------------------------------------------------------
 */

extern "C" DLLEXPORT int
Mmap_Init(Tcl_Interp *interp) noexcept
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
    if (Tcl_CreateObjCommand(interp, "::mmap", MmapObjCmd, nullptr, nullptr)
	    == nullptr
	    || Tcl_CreateObjCommand(interp, "::mmap::sync", MmapSyncObjCmd,
		    nullptr, nullptr) == nullptr
	    || CreateAccessCommands(interp) != TCL_OK
	    || Tcl_CreateObjCommand(interp, "::mmap::log", MmapLogObjCmd,
		    nullptr, nullptr) == nullptr) {
	return TCL_ERROR;
    }
    return Tcl_PkgProvide(interp, "mmap", PACKAGE_VERSION);
}

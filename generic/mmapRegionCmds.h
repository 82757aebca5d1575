/*
 * mmapRegionCmds.h --
 *
 *	The commands that reach a region directly rather than through the
 *	channel: positioned copies (mmap::read, mmap::write), atomics on
 *	64-bit words (mmap::incr, mmap::cas), sleeping on a word
 *	(mmap::wait, mmap::wake) and a lock kept in a word (mmap::lock).
 *	None of them moves the channel's position or touches Tcl's channel
 *	buffers; every access goes through the fault guard, so a file that
 *	shrank gives the channel's usual error. They find their region
 *	through the channel face (mmapChannel.h); the OS side of the words
 *	is in unix/mmapShared.h.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_REGION_CMDS_H
#define MMAP_REGION_CMDS_H

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>

#include "mmapGlue.h"
#include "mmapChannel.h"
#include "mmapShared.h"

namespace {

/* The largest byte array Tcl can hold. */
constexpr std::uint64_t MAX_VALUE_BYTES = std::numeric_limits<TclSize>::max();

/* What a command is about to do with the bytes it names. */
enum class Access { Read, Write };

/*
 * The resolved target of a command: the region, and the region offset
 * of the bytes it works on.
 */
struct Target {
    MmapChannel *mc = nullptr;
    const char *name = nullptr;
    std::uint64_t offset = 0;	/* as given */
    std::size_t at = 0;		/* the same, once CheckSpan passed it */

    unsigned char *Bytes() const noexcept { return mc->mapping.data() + at; }
    std::atomic<std::uint64_t> &Word() const noexcept {
	return mmapunix::SharedWord(Bytes());
    }

    /* Run action inside the fault guard: false if it faulted. */
    template <typename Action>
    bool Completes(Action &&action) const noexcept {
	const unsigned char *data = mc->mapping.data();
	return mmapunix::GuardedCall(action, data, data + mc->Length()) == nullptr;
    }
    /*
     * The same, tried again like a channel copy while the file changes
     * under it; on a fault that stays, leave the channel's message for it
     * in interp and return TCL_ERROR. A faulting access did nothing (an
     * atomic instruction faults before it changes the word; a copy is
     * simply done again), so repeating it is safe.
     */
    template <typename Action>
    int Guarded(Tcl_Interp *interp, Access access, Action &&action) const noexcept {
	return mc->Retrying([&] { return Completes(action); })
		? TCL_OK : FailFault(interp, access);
    }
    int FailFault(Tcl_Interp *interp, Access access) const noexcept {
	int error;
	Tcl_Obj *message = mc->FaultMessage(access == Access::Write, error);
	Tcl_SetObjErrorCode(interp, PosixCode(error));
	Tcl_SetObjResult(interp, message);
	return TCL_ERROR;
    }
};

/* Parse a non-negative integer argument called what ("offset", ...). */
int
ParseCount(Tcl_Interp *interp, Tcl_Obj *value, const char *what,
	const char *codeWord, std::uint64_t &out) noexcept
{
    if (!GetNonNegative(value, out)) {
	const char *given = Tcl_GetString(value);
	return Fail(interp, Tcl_ObjPrintf(
		"bad %s \"%s\": must be a non-negative integer", what, given),
		{"MMAP", "VALUE", codeWord, given});
    }
    return TCL_OK;
}

/*
 * Find the region and offset a command names; writes need a writable
 * channel. CheckSpan then checks the bytes it will touch. Every check
 * comes before any access, so a refused command changes nothing.
 */
int
LookupTarget(Tcl_Interp *interp, Tcl_Obj *channelObj, Tcl_Obj *offsetObj,
	Access access, Target &target) noexcept
{
    const char *name = Tcl_GetString(channelObj);
    MmapChannel *mc = LookupMmapChannel(interp, name);
    if (mc == nullptr) {
	return TCL_ERROR;
    }
    if (access == Access::Write && (mc->direction & TCL_WRITABLE) == 0) {
	return Fail(interp, Tcl_ObjPrintf(
		"channel \"%s\" is read-only: map a file opened with r+ to write",
		name), {"MMAP", "CHANNEL", "READONLY", name});
    }
    std::uint64_t offset;
    if (ParseCount(interp, offsetObj, "offset", "OFFSET", offset) != TCL_OK) {
	return TCL_ERROR;
    }
    target.mc = mc;
    target.name = name;
    target.offset = offset;
    return TCL_OK;
}

/*
 * The command will touch count bytes at the target (count ~0: up to the
 * end of the region); word: they are a word, 8-byte aligned in the file.
 */
int
CheckSpan(Tcl_Interp *interp, Target &target, std::uint64_t count,
	bool word) noexcept
{
    const MmapChannel *mc = target.mc;
    const char *name = target.name;
    const std::uint64_t length = mc->Length();
    const std::uint64_t offset = target.offset;
    if (offset > length || (count != ~std::uint64_t{0} && count > length - offset)) {
	const Decimal offsetText(offset);
	const Decimal countText(count);
	const Decimal lengthText(length);
	return Fail(interp, offset > length
		? Tcl_ObjPrintf("offset \"%s\" is past the end of channel \"%s\""
			" (%s bytes)", offsetText.text, name, lengthText.text)
		: Tcl_ObjPrintf("offset \"%s\" plus %s bytes reaches past the end of"
			" channel \"%s\" (%s bytes)", offsetText.text, countText.text,
			name, lengthText.text), {"MMAP", "RANGE", name});
    }
    if (word && (mc->offset + offset) % 8 != 0) {
	const Decimal offsetText(offset);
	const Decimal fileText(mc->offset + offset);
	return Fail(interp, Tcl_ObjPrintf(
		"offset \"%s\" of channel \"%s\" is at file offset %s, which is not"
		" a multiple of 8", offsetText.text, name, fileText.text),
		{"MMAP", "ALIGN", name});
    }
    target.at = static_cast<std::size_t>(offset);
    return TCL_OK;
}

/* Resolve the word named by channelId and offset. */
int
ResolveWord(Tcl_Interp *interp, Tcl_Obj *channelObj, Tcl_Obj *offsetObj,
	Access access, Target &target) noexcept
{
    if (LookupTarget(interp, channelObj, offsetObj, access, target) != TCL_OK) {
	return TCL_ERROR;
    }
    return CheckSpan(interp, target, 8, true);
}

/*
 * The bytes of a value for mmap::write, or nullptr with an error: a
 * character above \xFF has no byte, and writing its low 8 bits instead
 * would corrupt the region silently.
 */
const unsigned char *
ValueBytes(Tcl_Interp *interp, Tcl_Obj *value, std::size_t &count) noexcept
{
#if TCL_MAJOR_VERSION < 9
    /*
     * Tcl 8.6 truncates such characters without a word. A pure byte
     * array (no string) has none; otherwise look at the string.
     */
    static const Tcl_ObjType *const byteArrayType = Tcl_GetObjType("bytearray");
    bool fits = value->typePtr == byteArrayType && value->bytes == nullptr;
    if (!fits) {
	int size;
	const char *text = Tcl_GetStringFromObj(value, &size);
	const char *end = text + size;
	Tcl_UniChar ch = 0;
	while (text < end) {
	    text += Tcl_UtfToUniChar(text, &ch);
	    if (ch > 0xFF) {
		break;
	    }
	}
	fits = ch <= 0xFF;
    }
    int size = 0;
    const unsigned char *bytes = fits ? Tcl_GetByteArrayFromObj(value, &size) : nullptr;
#else
    Tcl_Size size = 0;
    const unsigned char *bytes = Tcl_GetBytesFromObj(nullptr, value, &size);
#endif
    if (bytes == nullptr) {
	Fail(interp, Tcl_NewStringObj(
		"bad bytes: the value holds a character above \\xFF", -1),
		{"MMAP", "VALUE", "BYTES"});
	return nullptr;
    }
    count = static_cast<std::size_t>(size);
    return bytes;
}

/*
 * mmap::read channelId offset ?count?
 */
int
MmapReadObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc != 3 && objc != 4) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset ?count?");
	return TCL_ERROR;
    }
    std::uint64_t count = ~std::uint64_t{0};
    if (objc == 4 && ParseCount(interp, objv[3], "count", "COUNT", count) != TCL_OK) {
	return TCL_ERROR;
    }
    Target target;
    if (LookupTarget(interp, objv[1], objv[2], Access::Read, target) != TCL_OK
	    || CheckSpan(interp, target, count, false) != TCL_OK) {
	return TCL_ERROR;
    }
    if (objc == 3) {
	count = target.mc->Length() - target.at;
    }
    if (count > MAX_VALUE_BYTES) {
	const Decimal countText(count);
	return Fail(interp, Tcl_ObjPrintf(
		"cannot read %s bytes: more than one Tcl value can hold",
		countText.text), {"MMAP", "RANGE", target.name});
    }
    /*
     * Tcl ends the process when it cannot allocate a value, so ask the
     * allocator first: a big region may well not fit in memory twice.
     */
#if TCL_MAJOR_VERSION < 9
    using AllocSize = unsigned int;	/* holds any int count plus a little */
#else
    using AllocSize = std::size_t;
#endif
    void *probe = Tcl_AttemptAlloc(static_cast<AllocSize>(count) + 64);
    if (probe == nullptr) {
	const Decimal countText(count);
	return Fail(interp, Tcl_ObjPrintf(
		"cannot read %s bytes: not enough memory", countText.text),
		{"POSIX", "ENOMEM", Tcl_ErrnoMsg(ENOMEM)});
    }
    Tcl_Free(static_cast<char *>(probe));
    Tcl_Obj *result = Tcl_NewObj();
    unsigned char *into = Tcl_SetByteArrayLength(result, static_cast<TclSize>(count));
    const unsigned char *from = target.Bytes();
    const std::size_t size = static_cast<std::size_t>(count);
    if (target.Guarded(interp, Access::Read,
	    [=] { std::memcpy(into, from, size); }) != TCL_OK) {
	Tcl_DecrRefCount(result);
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, result);
    return TCL_OK;
}

/*
 * mmap::write channelId offset bytes
 *
 * Like a write through the channel, it counts for [mmap::sync] and obeys
 * the channel's -sync.
 */
int
MmapWriteObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc != 4) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset bytes");
	return TCL_ERROR;
    }
    /* Bytes last: parsing the others could shimmer a shared value. */
    Target target;
    std::size_t count = 0;
    const unsigned char *bytes = nullptr;
    if (LookupTarget(interp, objv[1], objv[2], Access::Write, target) != TCL_OK
	    || (bytes = ValueBytes(interp, objv[3], count)) == nullptr
	    || CheckSpan(interp, target, count, false) != TCL_OK) {
	return TCL_ERROR;
    }
    unsigned char *into = target.Bytes();
    if (target.Guarded(interp, Access::Write,
	    [=] { std::memcpy(into, bytes, count); }) != TCL_OK) {
	return TCL_ERROR;
    }
    target.mc->NoteWritten(target.at, count);
    if (const int error = target.mc->SyncAfterWrite(target.at, count)) {
	return FailPosix(interp, error,
		Tcl_ObjPrintf("cannot sync channel \"%s\"", target.name));
    }
    return TCL_OK;
}

/* Parse a signed 64-bit integer argument (Tcl's own message on error). */
int
ParseWord(Tcl_Interp *interp, Tcl_Obj *value, std::uint64_t &out) noexcept
{
    Tcl_WideInt wide;
    if (GetWideInt(interp, value, wide) != TCL_OK) {
	return TCL_ERROR;
    }
    out = static_cast<std::uint64_t>(wide);
    return TCL_OK;
}

/*
 * Leave a 64-bit integer as the result. An unshared result object is
 * reused: mmap::incr in a loop then allocates nothing.
 */
void
SetWordResult(Tcl_Interp *interp, std::uint64_t value) noexcept
{
    const auto wide = static_cast<Tcl_WideInt>(value);
    Tcl_Obj *result = Tcl_GetObjResult(interp);
    if (Tcl_IsShared(result)) {
	Tcl_SetObjResult(interp, Tcl_NewWideIntObj(wide));
    } else {
	Tcl_SetWideIntObj(result, wide);
    }
}

/*
 * mmap::incr channelId offset ?increment?
 *
 * Adds with wrap-around (two's complement), as the processor does.
 */
int
MmapIncrObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc != 3 && objc != 4) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset ?increment?");
	return TCL_ERROR;
    }
    std::uint64_t increment = 1;
    Target target;
    if ((objc == 4 && ParseWord(interp, objv[3], increment) != TCL_OK)
	    || ResolveWord(interp, objv[1], objv[2], Access::Write, target) != TCL_OK) {
	return TCL_ERROR;
    }
    std::atomic<std::uint64_t> &word = target.Word();
    std::uint64_t result = 0;
    if (target.Guarded(interp, Access::Write, [&] {
	result = word.fetch_add(increment) + increment;
    }) != TCL_OK) {
	return TCL_ERROR;
    }
    target.mc->NoteWritten(target.at, 8);
    SetWordResult(interp, result);
    return TCL_OK;
}

/*
 * mmap::cas channelId offset expected new
 *
 * Returns the value found: the swap happened exactly when it equals
 * expected.
 */
int
MmapCasObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc != 5) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset expected new");
	return TCL_ERROR;
    }
    std::uint64_t found, replacement;
    Target target;
    if (ParseWord(interp, objv[3], found) != TCL_OK
	    || ParseWord(interp, objv[4], replacement) != TCL_OK
	    || ResolveWord(interp, objv[1], objv[2], Access::Write, target) != TCL_OK) {
	return TCL_ERROR;
    }
    std::atomic<std::uint64_t> &word = target.Word();
    if (target.Guarded(interp, Access::Write, [&] {
	word.compare_exchange_strong(found, replacement);
    }) != TCL_OK) {
	return TCL_ERROR;
    }
    target.mc->NoteWritten(target.at, 8);
    SetWordResult(interp, found);
    return TCL_OK;
}

/*
 * mmap::wait's sleep on the word at target until it differs from
 * expected, a wake comes, or deadline passes.
 */
int
WaitOnWord(Tcl_Interp *interp, const Target &target, std::uint64_t expected,
	const WaitDeadline &deadline)	/* not noexcept: ServeSignals */
{
    std::atomic<std::uint64_t> &word = target.Word();
    const std::uint32_t expectedHalf = mmapunix::FutexHalfOf(expected);
    for (;;) {
	std::uint64_t current = 0;
	if (target.Guarded(interp, Access::Read, [&] {
	    current = word.load(std::memory_order_acquire);
	}) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (current != expected) {
	    Tcl_SetObjResult(interp, Tcl_NewIntObj(1));
	    return TCL_OK;
	}
	const std::int64_t slice = deadline.NextSleep();
	if (slice == 0) {
	    Tcl_SetObjResult(interp, Tcl_NewIntObj(0));
	    return TCL_OK;
	}
	const int status = mmapunix::WaitWhileEqual(mmapunix::FutexHalf(word),
		expectedHalf, static_cast<long>(slice));
	if (status == 0) {
	    Tcl_SetObjResult(interp, Tcl_NewIntObj(1));
	    return TCL_OK;
	}
	if (status == EFAULT) {
	    return target.FailFault(interp, Access::Read);
	}
	if (status != ETIMEDOUT && status != EINTR) {
	    return FailPosix(interp, status, Tcl_ObjPrintf(
		    "cannot wait on channel \"%s\"", target.name));
	}
	if (const int code = ServeSignals(interp)) {
	    return code;
	}
    }
}

/*
 * mmap::wait channelId offset value ?milliseconds?
 *
 * 1 when the word differs from value or a wake came, 0 at the timeout.
 * A signal ends the wait only if Tcl turns it into an error.
 */
int
MmapWaitObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])	/* not noexcept: ServeSignals */
{
    if (objc != 4 && objc != 5) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset value ?milliseconds?");
	return TCL_ERROR;
    }
    std::uint64_t expected;
    std::uint64_t timeout = ~std::uint64_t{0};
    Target target;
    if (ParseWord(interp, objv[3], expected) != TCL_OK
	    || (objc == 5 && ParseCount(interp, objv[4], "timeout", "TIMEOUT",
		    timeout) != TCL_OK)
	    || ResolveWord(interp, objv[1], objv[2], Access::Read, target) != TCL_OK) {
	return TCL_ERROR;
    }
    const WaitDeadline deadline(objc == 4, timeout);
    Tcl_Channel channel = target.mc->channel;
    Tcl_RegisterChannel(nullptr, channel);
    const int code = WaitOnWord(interp, target, expected, deadline);
    Tcl_UnregisterChannel(nullptr, channel);
    return code;
}

/*
 * mmap::wake channelId offset ?count?
 */
int
MmapWakeObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]) noexcept
{
    if (objc != 3 && objc != 4) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId offset ?count?");
	return TCL_ERROR;
    }
    std::uint64_t count = INT_MAX;
    Target target;
    if ((objc == 4 && ParseCount(interp, objv[3], "count", "COUNT", count) != TCL_OK)
	    || ResolveWord(interp, objv[1], objv[2], Access::Read, target) != TCL_OK) {
	return TCL_ERROR;
    }
    const int woken = mmapunix::WakeWaiters(mmapunix::FutexHalf(target.Word()),
	    static_cast<int>(std::min<std::uint64_t>(count, INT_MAX)));
    if (woken == -EFAULT) {
	return target.FailFault(interp, Access::Read);
    }
    if (woken < 0) {
	return FailPosix(interp, -woken, Tcl_ObjPrintf(
		"cannot wake waiters on channel \"%s\"", target.name));
    }
    Tcl_SetObjResult(interp, Tcl_NewIntObj(woken));
    return TCL_OK;
}

/*
 * Why mmap::lock could not take or test a lock. ENOENT: the channel's
 * file can no longer be opened by its name, and without a descriptor of
 * it the holders' liveness cannot be proved. ENOLCK: a record lock (fcntl
 * or TclX flock) covers the bytes mmap::lock locks (see mmapOwner.h).
 */
int
FailLockFile(Tcl_Interp *interp, const Target &target, int error) noexcept
{
    if (error == ENOENT) {
	const char *path = target.mc->file.Path();
	return Fail(interp, Tcl_ObjPrintf("cannot lock channel \"%s\": its file \"%s\""
		" can no longer be opened by that name", target.name, path),
		{"MMAP", "LOCK", "NOFILE", target.name});
    }
    if (error == ENOLCK) {
	return Fail(interp, Tcl_ObjPrintf("cannot lock channel \"%s\": a record lock"
		" (fcntl, flock) covers the bytes from offset 2**62 of its file",
		target.name), {"MMAP", "LOCK", "RECORDLOCK", target.name});
    }
    return FailPosix(interp, error, Tcl_ObjPrintf("cannot lock channel \"%s\"",
	    target.name));
}

/*
 * mmap::lock's work once the channel is held open: take the lock (a
 * locker sleeping for a live holder serves signals like mmap::wait), run
 * the script, release the lock.
 */
int
LockAndRun(Tcl_Interp *interp, const Target &target, Tcl_Obj *recoveredVar,
	Tcl_Obj *script)	/* not noexcept: see MayExitThread */
{
    std::atomic<std::uint64_t> &word = target.Word();
    mmapunix::LockOutcome outcome = mmapunix::LockOutcome::Failed;
    bool slept = false;
    int error = 0;
    mmapunix::LockFile *file = nullptr;
    if ((error = target.mc->LockFileOf(file)) != 0) {
	return FailLockFile(interp, target, error);
    }
    do {
	if (target.Guarded(interp, Access::Write, [&] {
	    outcome = mmapunix::LockWord(word, *file, slept, error,
		    [=] { return SignalsDue(interp); });
	}) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (outcome == mmapunix::LockOutcome::Interrupted) {
	    if (const int code = ServeSignals(interp)) {
		return code;
	    }
	}
    } while (outcome == mmapunix::LockOutcome::Interrupted);
    switch (outcome) {
    case mmapunix::LockOutcome::HeldByThisThread: {
	const Decimal offsetText(target.at);
	return Fail(interp, Tcl_ObjPrintf(
		"the lock at offset %s of channel \"%s\" is already held by this"
		" thread", offsetText.text, target.name),
		{"MMAP", "LOCK", "HELD", target.name});
    }
    case mmapunix::LockOutcome::Failed:
	return FailLockFile(interp, target, error);
    case mmapunix::LockOutcome::Acquired:
    case mmapunix::LockOutcome::TookOverFromDeadHolder:
    case mmapunix::LockOutcome::Interrupted:
	break;
    }

    const bool recovered = outcome == mmapunix::LockOutcome::TookOverFromDeadHolder;
    int code = TCL_OK;
    if (recoveredVar != nullptr && Tcl_ObjSetVar2(interp, recoveredVar, nullptr,
	    Tcl_NewIntObj(recovered ? 1 : 0), TCL_LEAVE_ERR_MSG) == nullptr) {
	code = TCL_ERROR;
    } else {
	code = Tcl_EvalObjEx(interp, script, 0);
	if (code == TCL_ERROR) {
	    Tcl_AppendObjToErrorInfo(interp, Tcl_ObjPrintf(
		    "\n    (\"mmap::lock\" script line %d)", Tcl_GetErrorLine(interp)));
	}
    }
    /* A fault here means the word is gone, and the lock with it. */
    target.Completes([&] { mmapunix::UnlockWord(word, *file); });
    return code;
}

/*
 * mmap::lock ?-recovered varName? channelId offset script
 *
 * The script runs in the caller's frame, like the body of [if]; its
 * result and return code (error, return, break, continue) are the
 * command's. The channel is held open until the lock is released, so a
 * script that closes it cannot unmap the word under us.
 *
 * Not noexcept, as the script may end the thread (see MayExitThread).
 * Its forced unwinding touches nothing on the way: the lock stays with a
 * thread that no longer exists, and the next locker takes it over.
 */
int
MmapLockObjCmd(void * /*clientData*/, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    constexpr const char *usage = "?-recovered varName? channelId offset script";
    Tcl_Obj *recoveredVar = nullptr;
    int first = 1;
    if (objc == 6) {
	/* A unique prefix will do, as for the package's other options. */
	static const char *const options[] = {"-recovered", nullptr};
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[1], options, "option", 0, &index) != TCL_OK) {
	    const char *option = Tcl_GetString(objv[1]);
	    return Fail(interp, Tcl_ObjPrintf(
		    "bad option \"%s\": must be -recovered", option),
		    {"MMAP", "OPTION", "UNKNOWN", option});
	}
	recoveredVar = objv[2];
	first = 3;
    } else if (objc != 4) {
	Tcl_WrongNumArgs(interp, 1, objv, usage);
	return TCL_ERROR;
    }
    Target target;
    if (ResolveWord(interp, objv[first], objv[first + 1], Access::Write,
	    target) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_Channel channel = target.mc->channel;
    Tcl_RegisterChannel(nullptr, channel);
    const int code = LockAndRun(interp, target, recoveredVar, objv[first + 2]);
    Tcl_UnregisterChannel(nullptr, channel);
    return code;
}

/* Create the region commands in interp's ::mmap namespace. */
int
CreateRegionCommands(Tcl_Interp *interp) noexcept
{
    static const struct {
	const char *name;
	Tcl_ObjCmdProc *proc;
    } commands[] = {
	{"::mmap::read", MmapReadObjCmd},
	{"::mmap::write", MmapWriteObjCmd},
	{"::mmap::incr", MmapIncrObjCmd},
	{"::mmap::cas", MmapCasObjCmd},
	{"::mmap::wait", MmapWaitObjCmd},
	{"::mmap::wake", MmapWakeObjCmd},
	{"::mmap::lock", MmapLockObjCmd},
    };
    for (const auto &command : commands) {
	if (Tcl_CreateObjCommand(interp, command.name, command.proc, nullptr,
		nullptr) == nullptr) {
	    return TCL_ERROR;
	}
    }
    return TCL_OK;
}

} // namespace

#endif /* MMAP_REGION_CMDS_H */


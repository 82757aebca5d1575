/*
 * mmapGlue.h --
 *
 *	The Tcl glue that every Tcl face of the package uses (the channel,
 *	the region commands, the log objects): how entry points are declared
 *	so that no exception reaches Tcl, Tcl's size type, -errorcode lists
 *	and the error helpers, parsing 64-bit numbers, and what a long sleep
 *	owes the interp (signal handlers, time limits) between its slices.
 *	It knows nothing of regions, channels or logs.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_GLUE_H
#define MMAP_GLUE_H

#include <tcl.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <limits>

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

/* Milliseconds on a clock that never jumps. */
std::int64_t
NowMs() noexcept
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

/*
 * A futex sleeps on only the 32-bit half of the word at its lower
 * address. A change to the other half alone, with its wake, can slip in
 * between our look at the whole word and the sleep; sleeping in slices
 * this long and looking again bounds how late such a change is seen.
 */
constexpr std::int64_t WAIT_SLICE_MS = 250;

/*
 * When a wait of ms milliseconds (forever: none) ends, and how long each
 * sleep in it may be: a slice, or what is left of the wait.
 */
class WaitDeadline {
public:
    WaitDeadline(bool forever, std::uint64_t ms) noexcept
	: forever_(forever),
	  /* Far enough that the sum cannot overflow; still ~292 million years. */
	  at_(forever ? 0 : NowMs() + static_cast<std::int64_t>(std::min<std::uint64_t>(
		  ms, std::numeric_limits<std::int64_t>::max() / 2))) {}
    /* Milliseconds the next sleep may take; 0 once the wait is over. */
    std::int64_t NextSleep() const noexcept {
	return forever_ ? WAIT_SLICE_MS
		: std::max<std::int64_t>(0, std::min(WAIT_SLICE_MS, at_ - NowMs()));
    }

private:
    bool forever_;
    std::int64_t at_;
};

/* Whether interp has a time limit ([interp limit]) that has passed. */
bool
TimeLimitPassed(Tcl_Interp *interp) noexcept
{
    if (!Tcl_LimitTypeEnabled(interp, TCL_LIMIT_TIME)) {
	return false;
    }
    Tcl_Time limit, now;
    Tcl_LimitGetTime(interp, &limit);
    Tcl_GetTime(&now);
    return now.sec > limit.sec || (now.sec == limit.sec && now.usec > limit.usec);
}

/* Whether a sleep must stop so that ServeSignals can do its work. */
bool
SignalsDue(Tcl_Interp *interp) noexcept
{
    return Tcl_AsyncReady() || TimeLimitPassed(interp) || Tcl_InterpDeleted(interp);
}

/*
 * What a long sleep owes the interp, as [after] does it: the
 * asynchronous handlers Tcl has pending run (TclX's [signal error] and
 * [signal trap] work through them, so a trapped SIGINT can end a wait),
 * and a time limit that passed ends the command (unless its handlers
 * extend it). So do [interp cancel] and [thread::cancel] (Tcl delivers
 * them as asynchronous handlers that mark the interp), and the deletion
 * of the interp by a handler: nothing is left to wait for. TCL_OK to
 * sleep on, else the code to end the command with. A handler's script
 * may close the channel: callers hold it open (Tcl_RegisterChannel)
 * meanwhile.
 */
int
ServeSignals(Tcl_Interp *interp)	/* not noexcept: see MayExitThread */
{
    if (Tcl_AsyncReady()) {
	if (const int code = Tcl_AsyncInvoke(interp, TCL_OK)) {
	    return code;
	}
    }
    if (Tcl_Canceled(interp, TCL_LEAVE_ERR_MSG) != TCL_OK) {
	return TCL_ERROR;
    }
    if (Tcl_InterpDeleted(interp)) {
	return Fail(interp, Tcl_NewStringObj(
		"the interpreter was deleted while the command waited", -1),
		{"MMAP", "INTERP", "DELETED"});
    }
    if (TimeLimitPassed(interp)) {
	/* Tcl looks at the clock only every granularity-th time it is ready. */
	const int calls = Tcl_LimitGetGranularity(interp, TCL_LIMIT_TIME);
	for (int i = 0; i < calls; i++) {
	    if (Tcl_LimitReady(interp) && Tcl_LimitCheck(interp) != TCL_OK) {
		return TCL_ERROR;
	    }
	}
    }
    return TCL_OK;
}

} // namespace

#endif /* MMAP_GLUE_H */

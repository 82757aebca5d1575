/*
 * mmapLogCmds.h --
 *
 *	The log face of the package: [mmap::log open] and the object
 *	commands it returns. The format and every algorithm are in
 *	generic/mmapLog.h and the file calls in unix/mmapLogFile.h; this
 *	part parses arguments, creates and checks the file, maps it,
 *	converts messages between Tcl strings and UTF-8, and turns outcomes
 *	into Tcl errors.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_LOG_CMDS_H
#define MMAP_LOG_CMDS_H

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "mmapGlue.h"
#include "mmapUnix.h"
#include "mmapLog.h"
#include "mmapLogFile.h"

namespace {

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
    mmapunix::LockFile *lockFile = nullptr;	/* the process's descriptor of
						 * the file, kept open: see
						 * mmapOwner.h */
    std::uint32_t version = mmaplog::VERSION;	/* the file's format */
    bool fenceMarked = true;		/* a writable log whose fence has not
					 * run yet is false until it has (see
					 * LockFile::MarkFenced) */

    LogObject(std::string &&where, mmapunix::Mapping &&map,
	    const mmaplog::Geometry &g, bool ro) noexcept
	: path(std::move(where)), mapping(std::move(map)),
	  geometry(g), log(mapping.data(), mapping.length(), g), readonly(ro) {}
    ~LogObject() {
	if (lockFile != nullptr) {
	    lockFile->Release();
	}
    }
    LogObject(const LogObject &) = delete;
    LogObject &operator=(const LogObject &) = delete;
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
 * wording, and POSIX EIO, as for a shrunk mapped file; an append into a
 * hole of a sparse log on a full file system, ENOSPC, as the channel
 * says for the same fault.
 */
int
FailLogFault(Tcl_Interp *interp, const LogObject &lo, const char *verb) noexcept
{
    mmapunix::FileLook now;
    const bool shrank = LogFileShrank(lo, now);
    const bool full = !shrank && std::strcmp(verb, "appending to") == 0
	    && lo.file.FileSystemFull();
    const int error = full ? ENOSPC : EIO;
    Tcl_Obj *message = shrank
	    ? ShrankMessage(verb, "log ", lo.path.c_str(), now.size, lo.geometry.fileSize)
	    : Tcl_ObjPrintf("error %s log \"%s\": %s", verb, lo.path.c_str(),
		    Tcl_ErrnoMsg(error));
    Tcl_SetObjErrorCode(interp, PosixCode(error));
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
 * Messages are stored as standard UTF-8 (RFC 3629), readable by any
 * program. Tcl's own string bytes differ from it in NUL, which Tcl
 * writes C0 80, in characters beyond the BMP where a Tcl 8.6 build keeps
 * them as surrogate pairs (ED Ax xx ED Bx xx), and in lone surrogates
 * ("\uD83D"), which standard UTF-8 has no form for: those are stored as
 * U+FFFD. A payload another program wrote may hold bytes that are not
 * UTF-8: each ill-formed stretch reads back as U+FFFD (see Utf8Prefix),
 * so that every value read can be written anywhere.
 */

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
constexpr char REPLACEMENT[] = "\xEF\xBF\xBD";

/*
 * How many bytes at in (left bytes from there) belong to one sequence
 * of standard UTF-8 (RFC 3629; Unicode's table 3-7 of well-formed
 * sequences): its length, with complete set, when the whole sequence is
 * there; else (complete false) the length of its longest well-formed
 * start, at least 1: a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate or a code point beyond U+10FFFF. A reader
 * replaces each such start by one U+FFFD, as Unicode recommends and
 * Python's and the browsers' decoders do.
 */
std::size_t
Utf8Prefix(const unsigned char *in, std::size_t left, bool &complete) noexcept
{
    const unsigned char lead = in[0];
    complete = lead < 0x80;
    if (complete) {
	return 1;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xBF;	/* what the second byte may be */
    if (lead >= 0xC2 && lead <= 0xDF) {
	length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
	length = 3;
	low = lead == 0xE0 ? 0xA0 : low;	/* not overlong */
	high = lead == 0xED ? 0x9F : high;	/* not a surrogate */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
	length = 4;
	low = lead == 0xF0 ? 0x90 : low;	/* not overlong */
	high = lead == 0xF4 ? 0x8F : high;	/* not beyond U+10FFFF */
    } else {
	return 1;
    }
    if (left < 2 || in[1] < low || in[1] > high) {
	return 1;
    }
    std::size_t good = 2;
    while (good < length && good < left && (in[good] & 0xC0) == 0x80) {
	good++;
    }
    complete = good == length;
    return good;
}

/* The length of the standard UTF-8 sequence at in, or 0 if none starts there. */
std::size_t
Utf8SequenceLength(const unsigned char *in, std::size_t left) noexcept
{
    bool complete;
    const std::size_t length = Utf8Prefix(in, left, complete);
    return complete ? length : 0;
}

/* Whether a Tcl string's bytes are standard UTF-8 already (most are). */
bool
IsStandardUtf8(const char *bytes, std::size_t length) noexcept
{
    const auto *in = reinterpret_cast<const unsigned char *>(bytes);
    std::size_t i = 0;
    /* Eight bytes at a time while all are ASCII: an append's hot path. */
    for (std::uint64_t word; i + 8 <= length; i += 8) {
	std::memcpy(&word, in + i, 8);
	if ((word & 0x8080808080808080u) != 0) {
	    break;
	}
    }
    while (i < length) {
	if (in[i] < 0x80) {
	    i++;
	    continue;
	}
	const std::size_t step = Utf8SequenceLength(in + i, length - i);
	if (step == 0) {
	    return false;
	}
	i += step;
    }
    return true;
}

/* Append the standard UTF-8 form of a Tcl string's bytes to out. */
void
AppendStandardUtf8(const char *bytes, std::size_t length, std::string &out)
{
    const auto *in = reinterpret_cast<const unsigned char *>(bytes);
    for (std::size_t i = 0; i < length;) {
	const std::size_t left = length - i;
	if (in[i] == 0xC0 && left >= 2 && in[i + 1] == 0x80) {
	    out.push_back('\0');
	    i += 2;
	} else if (in[i] == 0xED && left >= 6 && (in[i + 1] & 0xF0) == 0xA0
		&& (in[i + 2] & 0xC0) == 0x80 && in[i + 3] == 0xED
		&& (in[i + 4] & 0xF0) == 0xB0 && (in[i + 5] & 0xC0) == 0x80) {
	    const std::uint32_t high = ((in[i + 1] & 0x0Fu) << 6) | (in[i + 2] & 0x3Fu);
	    const std::uint32_t low = ((in[i + 4] & 0x0Fu) << 6) | (in[i + 5] & 0x3Fu);
	    const std::uint32_t code = 0x10000 + (high << 10) + low;
	    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
	    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
	    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
	    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
	    i += 6;
	} else if (const std::size_t step = Utf8SequenceLength(in + i, left)) {
	    out.append(bytes + i, step);
	    i += step;
	} else {
	    /* A lone surrogate (three bytes), or a byte Tcl should never
	     * have held: one replacement character. */
	    const bool surrogate = in[i] == 0xED && left >= 3 && in[i + 1] >= 0xA0
		    && (in[i + 2] & 0xC0) == 0x80;
	    out.append(REPLACEMENT, 3);
	    i += surrogate ? 3 : 1;
	}
    }
}

/*
 * The Tcl value of a stored payload. Payloads with neither NUL, nor a
 * 4-byte character, nor bytes that are not UTF-8 are already Tcl's own
 * form; the rest goes through Tcl's utf-8 encoding, after each
 * ill-formed stretch is replaced by U+FFFD.
 *
 * Out of line because [foreach]'s visitor, which runs the script, must
 * keep no local whose address is taken: such a local gets
 * AddressSanitizer's guard zones in its frame, and when the script ends
 * the thread ([thread::exit]) the frame is unwound without clearing
 * them, which makes AddressSanitizer fail a check of its own in the
 * cleanups further up.
 */
__attribute__((noinline))
Tcl_Obj *
MessageObj(const char *bytes, std::size_t length) noexcept
{
    const auto *in = reinterpret_cast<const unsigned char *>(bytes);
    /* Sixteen bytes at a time while none is 0 or above 0x7F (ASCII text):
     * a byte b has the high bit of (b - 1) | b set only then. */
    constexpr std::uint64_t ONES = 0x0101010101010101u, HIGH = 0x8080808080808080u;
    std::size_t i = 0;
    for (std::uint64_t word[2]; i + 16 <= length; i += 16) {
	std::memcpy(word, in + i, 16);
	if (((word[0] - ONES) | word[0] | (word[1] - ONES) | word[1]) & HIGH) {
	    break;
	}
    }
    bool plain = true, valid = true;
    while (i < length) {
	if (in[i] != 0 && in[i] < 0x80) {
	    i++;
	    continue;
	}
	const std::size_t step = in[i] == 0 ? 1 : Utf8SequenceLength(in + i, length - i);
	plain = plain && step != 0 && step < 4 && in[i] != 0;
	valid = valid && step != 0;
	i += step != 0 ? step : 1;
    }
    if (plain) {
	return Tcl_NewStringObj(bytes, static_cast<TclSize>(length));
    }
    Tcl_DString clean;
    Tcl_DStringInit(&clean);
    if (!valid) {
	for (std::size_t i = 0; i < length;) {
	    bool complete;
	    const std::size_t step = Utf8Prefix(in + i, length - i, complete);
	    if (complete) {
		Tcl_DStringAppend(&clean, bytes + i, static_cast<TclSize>(step));
	    } else {
		Tcl_DStringAppend(&clean, REPLACEMENT, 3);
	    }
	    i += step;
	}
	bytes = Tcl_DStringValue(&clean);
	length = static_cast<std::size_t>(Tcl_DStringLength(&clean));
    }
    static const Tcl_Encoding utf8 = Tcl_GetEncoding(nullptr, "utf-8");
    Tcl_DString ds;
    Tcl_ExternalToUtfDString(utf8, bytes, static_cast<TclSize>(length), &ds);
    Tcl_Obj *result = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    Tcl_DStringFree(&clean);
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
	    if (!IsStandardUtf8(bytes, messages[i].length)) {
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
	    if (!lo.fenceMarked && !lo.log.FencePending()) {
		/* The fence the open left to this append has run. */
		lo.lockFile->MarkFenced();
		lo.fenceMarked = true;
	    }
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

/*
 * The options of [read] and [foreach] (?-from seq? ?-count n? ?-last n?),
 * in objv[first] up to objv[end] (not included), into request.
 */
int
ParseReadOptions(Tcl_Interp *interp, Tcl_Obj *const objv[], int first, int end,
	mmaplog::ReadRequest &request) noexcept
{
    static const char *const options[] = {"-count", "-from", "-last", nullptr};
    /* Another program (or a Tcl 9 writer) may store longer messages than
     * a Tcl 8.6 value can hold. */
    request.longest = static_cast<std::uint64_t>(std::numeric_limits<TclSize>::max());
    std::uint64_t *targets[] = {&request.count, &request.from, &request.last};
    for (int i = first; i < end; i += 2) {
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[i], options, "option", 0, &index) != TCL_OK) {
	    const char *given = Tcl_GetString(objv[i]);
	    return Fail(interp, Tcl_ObjPrintf(
		    "bad option \"%s\": must be -count, -from, or -last", given),
		    {"MMAP", "OPTION", "UNKNOWN", given});
	}
	if (i + 1 >= end) {
	    return Fail(interp, Tcl_ObjPrintf("missing value for option \"%s\"",
		    options[index]), {"MMAP", "OPTION", "NOVALUE", options[index]});
	}
	if (ParseSize(interp, options[index], objv[i + 1], *targets[index]) != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    return TCL_OK;
}

/* The error for a record too long for a Tcl value (Status::TooLong). */
int
FailTooLong(Tcl_Interp *interp, const LogObject &lo,
	const mmaplog::ReadResult &result) noexcept
{
    return Fail(interp, Tcl_ObjPrintf("record %s of log \"%s\" has %s bytes: more than"
	    " a Tcl value can hold", Decimal(result.longSeq).text, lo.path.c_str(),
	    Decimal(result.longLength).text), {"MMAP", "LOG", "TOOLONG", lo.path.c_str()});
}

/* $log read ?-from seq? ?-count n? ?-last n? */
int
LogRead(Tcl_Interp *interp, LogObject &lo, int objc, Tcl_Obj *const objv[]) noexcept
{
    mmaplog::ReadRequest request;
    if (ParseReadOptions(interp, objv, 2, objc, request) != TCL_OK) {
	return TCL_ERROR;
    }
    /*
     * The list is built from an array sized for the records expected, and
     * records the writers overwrote while they were read are dropped from
     * its front afterwards.
     *
     * Tcl ends the process when it cannot allocate a value, so, as
     * mmap::read does, the allocator is asked first: before the values of
     * a record are made, memory for them must have been seen free in a
     * chunk probed (and given back) since the last look. A big log may
     * well not fit in memory as one list.
     */
    std::vector<Tcl_Obj *> words;
    mmaplog::ReadResult result;
    mmaplog::Status status;
    std::size_t stale = 0;
    std::uint64_t seenFree = 0;
    bool noMemory = false;
    const auto reserve = [&](std::uint64_t bytes) {
	constexpr std::uint64_t CHUNK = 4 << 20;
	if (bytes <= seenFree) {
	    seenFree -= bytes;
	    return true;
	}
#if TCL_MAJOR_VERSION < 9
	using AllocSize = unsigned int;	/* Tcl_AttemptAlloc's parameter */
#else
	using AllocSize = std::size_t;
#endif
	const std::uint64_t probe = std::max(bytes, CHUNK);
	void *block = probe <= std::numeric_limits<AllocSize>::max()
		? Tcl_AttemptAlloc(static_cast<AllocSize>(probe)) : nullptr;
	if (block == nullptr) {
	    noMemory = true;
	    return false;
	}
	Tcl_Free(static_cast<char *>(block));
	seenFree = probe - bytes;
	return true;
    };
    /* Stay below the longest list Tcl can make, which it also enforces
     * by ending the process. */
    constexpr std::size_t MAX_WORDS =
	    std::numeric_limits<TclSize>::max() / sizeof(Tcl_Obj *) / 2;
    try {
	mmaplog::State now;
	if ((status = lo.log.Snapshot(now)) == mmaplog::Status::Ok) {
	    const std::uint64_t from = std::max(request.from, now.tailSeq);
	    const std::uint64_t expected = std::min({request.count, request.last,
		    from < now.nextSeq ? now.nextSeq - from : 0});
	    words.reserve(3 * static_cast<std::size_t>(expected));
	    status = lo.log.Read(request, result, [&](std::uint64_t seq, std::int64_t time,
		    const char *bytes, std::uint32_t length) {
		/* Three values, a list slot each, the text (twice when
		 * converted) and the allocator's overhead. */
		if (words.size() + 3 > MAX_WORDS || !reserve(3 * (sizeof(Tcl_Obj)
			+ sizeof(Tcl_Obj *)) + 2 * std::uint64_t{length} + 64)) {
		    noMemory = true;
		    return false;
		}
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
    if (noMemory) {
	status = mmaplog::Status::NoMemory;
    }
    status = ShrinkOrDamage(lo, status, result);
    /* The list's array is one block: it must fit as one. */
    if (status == mmaplog::Status::Ok) {
	seenFree = 0;
	if (!reserve(sizeof(Tcl_Obj *) * (words.size() - 3 * stale) + 256)) {
	    status = mmaplog::Status::NoMemory;
	}
    }
    if (status == mmaplog::Status::Ok) {
	Tcl_SetObjResult(interp, Tcl_NewListObj(static_cast<TclSize>(words.size() - 3 * stale),
		words.data() + 3 * stale));
    }
    for (Tcl_Obj *word : words) {
	Tcl_DecrRefCount(word);
    }
    if (status == mmaplog::Status::TooLong) {
	return FailTooLong(interp, lo, result);
    }
    return status == mmaplog::Status::Ok ? TCL_OK
	    : FailLogStatus(interp, lo, status, "reading");
}

/*
 * $log next: the number the next append will get, as committed, without
 * walking the records (info's "next" walks them all). A follower that
 * waited for a number and read nothing (the records there are damaged)
 * goes on from here.
 */
int
LogNext(Tcl_Interp *interp, LogObject &lo) noexcept
{
    mmaplog::State state;
    const mmaplog::Status status = lo.log.Snapshot(state);
    if (status != mmaplog::Status::Ok) {
	return FailLogStatus(interp, lo, status, "reading");
    }
    Tcl_SetObjResult(interp, Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(state.nextSeq)));
    return TCL_OK;
}

/*
 * Whether the log's path still names the file the log has open: not
 * after the file was removed, renamed, or replaced by a rename over it.
 * Appends then go on into the open file, which others opening the path
 * no longer see.
 */
bool
PathNamesLog(const LogObject &lo) noexcept
{
    const char *name = lo.file.Path()[0] != '\0' ? lo.file.Path() : lo.path.c_str();
    struct stat st;
    return ::stat(name, &st) == 0 && lo.file.Is(st.st_dev, st.st_ino);
}

/*
 * Holds references to the values a [foreach] uses across its script's
 * runs (its variable names, its script): the script may change or drop
 * the caller's copies. Released however the loop ends, by a forced
 * unwinding too.
 */
class HeldObjs {
public:
    HeldObjs() noexcept = default;
    void Hold(Tcl_Obj *obj) noexcept {
	Tcl_IncrRefCount(obj);
	objs_[count_++] = obj;
    }
    ~HeldObjs() {
	while (count_ > 0) {
	    Tcl_DecrRefCount(objs_[--count_]);
	}
    }
    HeldObjs(const HeldObjs &) = delete;
    HeldObjs &operator=(const HeldObjs &) = delete;

private:
    Tcl_Obj *objs_[4] = {};
    int count_ = 0;
};

/*
 * $log foreach varList ?-from seq? ?-count n? ?-last n? script
 *
 * Runs script in the caller's frame once per record of the range [read]
 * returns for the same options, oldest first, with the variables of
 * varList (one to three names) set to the record's number, time and
 * message in that order; fewer names take the first fields. No list of
 * the range is built: each record goes from Log::Read's walk to the
 * script, so the memory used does not grow with the range. The walk
 * ends at the next number of the committed state at its start: records
 * appended meanwhile (by the script too) are not visited.
 *
 * A loop cannot take back a record its script has seen, so Log::Read
 * hands a record over only if the committed state read after its copy
 * still keeps it (see Log::Read): a record writers overwrote is skipped
 * before any script sees it, as [read] would drop it, and the walk goes
 * on from the new oldest.
 *
 * Script results as in Tcl's foreach: break ends the loop, continue
 * goes on, an error ends the command with the body line added to
 * errorInfo, return and other codes end it with that code. A script
 * may close the log: the object outlives its command until the loop
 * ends, which then stops before touching the mapping again. A script
 * that closed it and breaks (or fails, or returns) ends the loop as it
 * says; one that goes on ends it with an error (MMAP LOG CLOSED).
 *
 * Not noexcept: the script may end the thread (see MayExitThread).
 */
int
LogForeach(Tcl_Interp *interp, LogObject &lo, int objc, Tcl_Obj *const objv[])
{
    if (objc < 4) {
	Tcl_WrongNumArgs(interp, 2, objv, "varList ?-from seq? ?-count n? ?-last n? script");
	return TCL_ERROR;
    }
    TclSize names = 0;
    Tcl_Obj **nameObjs = nullptr;
    if (Tcl_ListObjGetElements(nullptr, objv[2], &names, &nameObjs) != TCL_OK
	    || names < 1 || names > 3) {
	const char *given = Tcl_GetString(objv[2]);
	return Fail(interp, Tcl_ObjPrintf("bad variable list \"%s\": must be 1 to 3 names"
		" (for the number, time and message)", given),
		{"MMAP", "LOG", "VARLIST", given});
    }
    mmaplog::ReadRequest request;
    if (ParseReadOptions(interp, objv, 3, objc - 1, request) != TCL_OK) {
	return TCL_ERROR;
    }
    request.ahead = 1;		/* the script may change the log */
    HeldObjs held;
    Tcl_Obj *vars[3] = {};
    for (TclSize i = 0; i < names; i++) {
	held.Hold(vars[i] = nameObjs[i]);
    }
    Tcl_Obj *script = objv[objc - 1];
    held.Hold(script);
    const LogInUse inUse(lo);
    mmaplog::ReadResult result;
    mmaplog::Status status = mmaplog::Status::Ok;
    int code = TCL_OK;
    bool closed = false;
    try {
	status = lo.log.Read(request, result, [&](std::uint64_t seq, std::int64_t time,
		const char *bytes, std::uint32_t length) {
	    if (Tcl_ObjSetVar2(interp, vars[0], nullptr,
			Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(seq)), TCL_LEAVE_ERR_MSG)
			== nullptr
		    || (names > 1 && Tcl_ObjSetVar2(interp, vars[1], nullptr,
			Tcl_NewWideIntObj(time), TCL_LEAVE_ERR_MSG) == nullptr)
		    || (names > 2 && Tcl_ObjSetVar2(interp, vars[2], nullptr,
			MessageObj(bytes, length), TCL_LEAVE_ERR_MSG) == nullptr)) {
		code = TCL_ERROR;
		return false;
	    }
	    code = Tcl_EvalObjEx(interp, script, 0);
	    if (code == TCL_CONTINUE) {
		code = TCL_OK;
	    } else if (code == TCL_ERROR) {
		Tcl_AppendObjToErrorInfo(interp, Tcl_ObjPrintf(
			"\n    (\"%s foreach\" body line %d)", Tcl_GetString(objv[0]),
			Tcl_GetErrorLine(interp)));
	    }
	    closed = lo.deleted || lo.mapping.length() == 0;
	    return code == TCL_OK && !closed;
	});
    } catch (const std::bad_alloc &) {
	status = mmaplog::Status::NoMemory;
    }
    if (code == TCL_BREAK) {
	Tcl_ResetResult(interp);
	return TCL_OK;
    }
    if (code != TCL_OK) {
	return code;
    }
    if (closed) {
	return FailIfClosed(interp, lo, "its foreach script ran");
    }
    status = ShrinkOrDamage(lo, status, result);
    if (status == mmaplog::Status::TooLong) {
	return FailTooLong(interp, lo, result);
    }
    if (status != mmaplog::Status::Ok) {
	return FailLogStatus(interp, lo, status, "reading");
    }
    Tcl_ResetResult(interp);
    return TCL_OK;
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
	/*
	 * The counts describe the numbers from the committed oldest to next:
	 * each is either a record read sound or damaged, so records +
	 * damaged = next - oldest. next is the state the walk went along;
	 * oldest the state after it, since writers may have dropped records
	 * meanwhile: those are neither (the read's own damage count may
	 * include some of them, so damaged is worked out here).
	 */
	const std::uint64_t next = result.start.nextSeq;
	const std::uint64_t oldest = std::min(std::max(result.state.tailSeq,
		result.start.tailSeq), next);
	const auto kept = std::lower_bound(seqs.begin(), seqs.end(), oldest);
	const auto records = static_cast<std::uint64_t>(seqs.end() - kept);
	const std::uint64_t damaged = next - oldest - records;
	const std::pair<const char *, Tcl_Obj *> entries[] = {
	    {"size", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(lo.geometry.fileSize))},
	    {"oldest", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(oldest))},
	    {"next", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(next))},
	    {"records", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(records))},
	    {"damaged", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(damaged))},
	    {"maxmessage", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(lo.log.MaxMessage()))},
	    {"readonly", Tcl_NewBooleanObj(lo.readonly)},
	    {"onpath", Tcl_NewBooleanObj(PathNamesLog(lo))},
	    {"version", Tcl_NewIntObj(static_cast<int>(lo.version))},
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
    /* Records are numbered from 1: none numbered 0 or later exists until
     * record 1 does. */
    seq = std::max<std::uint64_t>(seq, 1);
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
	Tcl_Obj *const objv[])	/* not noexcept: LogWait, LogForeach */
{
    static const char *const methods[] = {"append", "close", "foreach", "info", "next",
	    "read", "sync", "wait", nullptr};
    enum Method { M_APPEND, M_CLOSE, M_FOREACH, M_INFO, M_NEXT, M_READ, M_SYNC, M_WAIT };
    auto &lo = *static_cast<LogObject *>(clientData);
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "method ?arg ...?");
	return TCL_ERROR;
    }
    int method;
    if (Tcl_GetIndexFromObj(nullptr, objv[1], methods, "method", 0, &method) != TCL_OK) {
	const char *given = Tcl_GetString(objv[1]);
	return Fail(interp, Tcl_ObjPrintf("bad method \"%s\": must be append, close,"
		" foreach, info, next, read, sync, or wait", given),
		{"MMAP", "LOG", "METHOD", given});
    }
    if ((method == M_CLOSE || method == M_INFO || method == M_NEXT || method == M_SYNC)
	    && objc != 2) {
	Tcl_WrongNumArgs(interp, 2, objv, nullptr);
	return TCL_ERROR;
    }
    switch (method) {
    case M_APPEND: return LogAppend(interp, lo, objc, objv);
    case M_FOREACH: return LogForeach(interp, lo, objc, objv);
    case M_INFO: return LogInfo(interp, lo);
    case M_NEXT: return LogNext(interp, lo);
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
		" package reads versions %u to %u", path,
		mmaplog::Load32(fixed + mmaplog::H_VERSION), mmaplog::OLDEST_VERSION,
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

/* The sync for the fence (Log::FenceBeforeAppending): context is the LogObject. */
int
SyncForFence(void *context, std::uint64_t from, std::uint64_t count) noexcept
{
    const auto *lo = static_cast<const LogObject *>(context);
    return lo->mapping.SyncRange(static_cast<std::size_t>(from),
	    static_cast<std::size_t>(count), true);
}

/*
 * Open an existing log: check it is one, with the size asked for, and
 * map it. A read-only open writes nothing to the file; a writable one
 * runs the fence.
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
    lo->version = mmaplog::Load32(fixed + mmaplog::H_VERSION);
    if (int error = mmapunix::LockFile::Acquire(fd, "", info.device, info.inode, !readonly,
	    lo->lockFile)) {
	delete lo;
	return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
    }
    lo->log.UseLockFile(*lo->lockFile);
    if (lo->version < mmaplog::VERSION && !readonly) {
	/*
	 * The older format's lock word named holders by process and thread
	 * ids: its writers must all be gone now (see doc/logformat.md). The
	 * header is rewritten in place; what the old word holds reads as a
	 * dead holder's.
	 */
	mmaplog::UpgradeHeader(fixed);
	if (::pwrite(fd, fixed, sizeof fixed, 0) != static_cast<ssize_t>(sizeof fixed)) {
	    const int error = errno != 0 ? errno : EIO;
	    delete lo;
	    return FailPosix(interp, error, Tcl_ObjPrintf("cannot open log \"%s\"", name));
	}
	lo->version = mmaplog::VERSION;
    }
    if (!readonly) {
	lo->log.ForgetDeadWaiters();
    }
    mmaplog::State state;
    const mmaplog::Status status = lo->log.Snapshot(state);
    if (status != mmaplog::Status::Ok) {
	FailLogStatus(interp, *lo, status, "opening");
	delete lo;
	return TCL_ERROR;
    }
    /*
     * The fence (doc/logformat.md, "Power loss"): records that a power
     * loss or a dead append left numbered at or above next are destroyed,
     * durably, before this process commits one. It runs here when the
     * append lock is free or soon released; when a live process keeps it
     * (one stopped, say), an open does not wait for it: the fence runs in
     * this object's first append instead, inside that append's lock. It
     * need not run while a process that fenced the log since the last
     * crash has it open (the kernel's word: see FENCED_BYTE); running it
     * anyway would be safe (it only destroys headers no committed state
     * counts), but it walks the whole area under the append lock.
     */
    if (!readonly && lo->lockFile->FencedByOpener()) {
	lo->lockFile->MarkFenced();
    } else if (!readonly) {
	lo->fenceMarked = false;
	std::uint64_t destroyed = 0;
	int error = 0;
	bool slept = false;
	const mmaplog::Status fenced = lo->log.Fence(destroyed, error, slept,
		[] { return true; }, [lo](std::uint64_t from, std::uint64_t count) {
		    return SyncForFence(lo, from, count);
		});
	if (fenced == mmaplog::Status::Interrupted || fenced == mmaplog::Status::Lock) {
	    /* (Lock: the lock word names this thread, or a futex call
	     * failed: the append reports it as it did before.) */
	    lo->log.FenceBeforeAppending(SyncForFence, lo);
	} else if (fenced != mmaplog::Status::Ok) {
	    FailLogStatus(interp, *lo, fenced, "opening", error);
	    delete lo;
	    return TCL_ERROR;
	} else {
	    lo->lockFile->MarkFenced();
	    lo->fenceMarked = true;
	}
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
    /* Never replace a command: a renamed log or a user's proc may hold
     * the next name, as an open channel keeps its name from [open]. */
    char command[40];
    do {
	std::snprintf(command, sizeof command, "::mmap::log%lu",
		logCounter.fetch_add(1) + 1);
    } while (Tcl_FindCommand(interp, command, nullptr, TCL_GLOBAL_ONLY) != nullptr);
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

/* Create [mmap::log] in interp. */
int
CreateLogCommands(Tcl_Interp *interp) noexcept
{
    return Tcl_CreateObjCommand(interp, "::mmap::log", MmapLogObjCmd, nullptr,
	    nullptr) != nullptr ? TCL_OK : TCL_ERROR;
}

} // namespace

#endif /* MMAP_LOG_CMDS_H */

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

/* Create [mmap::log] in interp. */
int
CreateLogCommands(Tcl_Interp *interp) noexcept
{
    return Tcl_CreateObjCommand(interp, "::mmap::log", MmapLogObjCmd, nullptr,
	    nullptr) != nullptr ? TCL_OK : TCL_ERROR;
}

} // namespace

#endif /* MMAP_LOG_CMDS_H */

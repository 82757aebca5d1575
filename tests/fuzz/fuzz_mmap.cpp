/*
 * fuzz_mmap.cpp --
 *
 *	A libFuzzer harness for the mmap extension. generic/mmap.cpp is
 *	compiled into the fuzzer binary (no stubs) and registered in one
 *	embedded Tcl interpreter; each input is decoded into a file, a
 *	region of it to map, and a sequence of channel operations that are
 *	run as real Tcl commands (so Tcl's buffering, translation and
 *	seek-back logic sit between the script and the driver, as they do for
 *	users). The harness keeps a model of the region and of the file and
 *	abort()s when the channel disagrees with it; Tcl errors are expected
 *	and ignored unless a rule below says an operation must (or must not)
 *	fail.
 *
 *	Build and run: tests/fuzz/libfuzzer.sh (it prints the command lines).
 *
 *	Environment read at start-up:
 *	    MMAP_FUZZ_SHRINK=0	leave out the "shrink the file" operation
 *				(on by default; without the fault guard in
 *				mmap.cpp it ends in SIGBUS, by design)
 *	    MMAP_FUZZ_STATS=1	print operation counters at exit
 *	    MMAP_FUZZ_TRACE=1	print every Tcl command run (for replays)
 *	    MMAP_FUZZ_TOLERATE	known issues to let pass (see below)
 *	    MMAP_FUZZ_TMPDIR	where the per-process temp dir goes
 *
 * Input format (all multi-byte numbers little endian; a missing byte
 * reads as 0, so every input is valid):
 *
 *	byte  flags   bit 0 -shared; bits 1-2 open mode (0 r, 1 r+, 2 r+,
 *		      3 a+); bit 3 -translation binary; bit 4 explicit
 *		      -length; bits 5-7 how the offset is chosen
 *	u16   file size selector (top bit: a page-boundary size from a table)
 *	u16   offset value
 *	u16   length value
 *	byte  content: newline spacing (bits 0-4) and pattern seed
 *	then  operations: one opcode byte (taken modulo the number of
 *	      operations) and its arguments, at most kMaxOps of them:
 *	      seek (3 origins, values in and out of range), read N,
 *	      read-all, read -nonewline, gets, puts (-nonewline or not, up
 *	      to several times the region), tell/eof, fconfigure queries
 *	      and settings (also from C with no interpreter), shrink the
 *	      file (ftruncate, or [chan truncate] on the source or another
 *	      channel), grow it, [mmap] with a fuzzed command line on a
 *	      scratch file, /dev/zero, a pipe, a stacked or a reflected
 *	      channel, flush / mmap::sync, close the source, close and
 *	      map again, fileevent handlers (one closes the channel) and a
 *	      bounded event loop, [chan copy] out of and into the region,
 *	      half-closes, [chan truncate] / [chan pending] on the region,
 *	      close.
 *
 * What makes the harness abort (besides sanitizer reports and signals):
 *	[tell] outside [0, length]; with binary input, [tell] not moving by
 *	exactly the bytes a read consumed, or those bytes differing from the
 *	model; a blocking read returning less than the region has; a
 *	[seek] that succeeds out of range or fails in range (or fails with
 *	another message); a [puts] in binary mode that leaves [tell] away
 *	from (tell + count) mod length; file bytes outside the region
 *	changing, or any file byte changing under a private mapping;
 *	[mmap] accepting an invalid range or refusing a valid one; a
 *	fconfigure -length/-offset/-shared answer that disagrees; reads or
 *	writes on an intact file failing, or on a shrunk one failing with
 *	another message than the fault guard's, or touching a dead page
 *	and not failing; a fault leaving [tell] moved; [close] failing
 *	with nothing left to flush; a descriptor or mapping of the temp
 *	files left after an input.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#include <tcl.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

extern "C" int Mmap_Init(Tcl_Interp *interp);

namespace {

/*
 * Byte loops of the harness's own checks: kept out of the coverage
 * instrumentation, which would otherwise cost most of the run's time and
 * add the harness's loops to the fuzzer's picture of "new behaviour".
 */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

constexpr std::uint64_t kPage = 4096;	/* checked against sysconf at start */
constexpr std::uint64_t kMaxFileSize = 3 * kPage + 700;
constexpr int kMaxOps = 64;

/*
 *----------------------------------------------------------------------
 * Process-wide state: one interpreter and one private temp directory,
 * created once, because creating an interpreter per input would cost
 * more than the input itself.
 *----------------------------------------------------------------------
 */

Tcl_Interp *interp = nullptr;
std::string tempDir;		/* per-process, removed at exit */
std::string mainPath;		/* the file the main region maps */
std::string scratchPath;	/* file for [mmap] command-line fuzzing */
bool shrinkEnabled = true;
bool trace = false;
/*
 * Behaviour doc/mmap.n (FAULTS) documents that is looser than the harness's own
 * strictest rule, accepted when named in MMAP_FUZZ_TOLERATE (a
 * comma-separated list; libfuzzer.sh names it by default):
 *   partial-tell  Tcl splits one [read] or [puts] into several driver
 *                 calls; when a later call meets a missing page, the
 *                 command fails but [tell] stays where the calls that
 *                 worked left it (a read consumed the bytes up to that
 *                 page, which is still checked; a write wrote whole
 *                 buffers)
 */
bool toleratePartialTell = false;
long pageSize = 4096;

/* Counters printed with MMAP_FUZZ_STATS=1, to show what a run reached. */
struct Stats {
    unsigned long inputs = 0, mapped = 0, mapFailed = 0, ops = 0;
    unsigned long reads = 0, readErrors = 0, writes = 0, writeErrors = 0;
    unsigned long shrinks = 0, grows = 0, guardReadErrors = 0;
    unsigned long guardWriteErrors = 0, cmdlines = 0, cmdlineMapped = 0;
    unsigned long contentChecks = 0, failedSeeks = 0, closeErrors = 0;
} stats;

[[noreturn]] void
Broken(const char *format, ...)
{
    std::va_list args;
    va_start(args, format);
    std::fputs("\n*** fuzz_mmap invariant broken: ", stderr);
    std::vfprintf(stderr, format, args);
    std::fputs("\n", stderr);
    va_end(args);
    std::abort();	/* libFuzzer saves the input as a crash- file */
}

/*
 *----------------------------------------------------------------------
 * Reading the input. Bytes past the end read as zero, so every input
 * decodes to something and the fuzzer never wastes inputs on "too
 * short".
 *----------------------------------------------------------------------
 */

class Input {
public:
    Input(const std::uint8_t *data, std::size_t size) : p_(data), end_(data + size) {}
    bool Empty() const { return p_ >= end_; }
    std::uint8_t Byte() { return p_ < end_ ? *p_++ : 0; }
    std::uint16_t U16() {
	std::uint16_t lo = Byte();
	return static_cast<std::uint16_t>(lo | (Byte() << 8));
    }
    std::uint32_t U32() {
	std::uint32_t lo = U16();
	return lo | (static_cast<std::uint32_t>(U16()) << 16);
    }
    /* Up to max bytes, as many as the input has left. */
    std::vector<std::uint8_t> Bytes(std::size_t max) {
	const std::size_t n = std::min<std::size_t>(max, static_cast<std::size_t>(end_ - p_));
	std::vector<std::uint8_t> out(p_, p_ + n);
	p_ += n;
	return out;
    }
private:
    const std::uint8_t *p_;
    const std::uint8_t *end_;
};

/*
 *----------------------------------------------------------------------
 * Running Tcl commands. Commands are built as word lists and run with
 * Tcl_EvalObjv: nothing from the input is ever parsed as a script, so the
 * fuzzer cannot reach [exit], [exec] or the file system through Tcl.
 *----------------------------------------------------------------------
 */

Tcl_Obj *Str(const std::string &s) { return Tcl_NewStringObj(s.data(), static_cast<int>(s.size())); }
Tcl_Obj *Str(const char *s) { return Tcl_NewStringObj(s, -1); }
Tcl_Obj *Wide(std::int64_t v) { return Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(v)); }
Tcl_Obj *Bytes(const std::vector<std::uint8_t> &b) {
    return Tcl_NewByteArrayObj(b.data(), static_cast<int>(b.size()));
}

/* Text for a trace line: control and non-ASCII bytes escaped, cut short. */
std::string
Printable(const std::string &text)
{
    std::string out;
    for (unsigned char c : text.substr(0, 200)) {
	if (c >= 0x20 && c < 0x7f) {
	    out += static_cast<char>(c);
	} else {
	    char hex[8];
	    std::snprintf(hex, sizeof hex, "\\x%02x", c);
	    out += hex;
	}
    }
    return text.size() > 200 ? out + "..." : out;
}

void
TraceCommand(const std::vector<Tcl_Obj *> &words)
{
    Tcl_Obj *list = Tcl_NewListObj(static_cast<int>(words.size()), words.data());
    Tcl_IncrRefCount(list);
    std::fprintf(stderr, "tcl> %s\n", Printable(Tcl_GetString(list)).c_str());
    Tcl_DecrRefCount(list);
}

/* Run one command; the result (or error) stays in the interpreter. */
int
Run(const std::vector<Tcl_Obj *> &words)
{
    for (Tcl_Obj *w : words) {
	Tcl_IncrRefCount(w);
    }
    if (trace) {
	TraceCommand(words);
    }
    const int code = Tcl_EvalObjv(interp, static_cast<int>(words.size()),
	    words.data(), TCL_EVAL_GLOBAL);
    if (trace) {
	std::fprintf(stderr, "  -> %s %s\n", code == TCL_OK ? "ok" : "ERROR",
		Printable(Tcl_GetStringResult(interp)).c_str());
    }
    for (Tcl_Obj *w : words) {
	Tcl_DecrRefCount(w);
    }
    return code;
}
int Run(std::initializer_list<Tcl_Obj *> words) { return Run(std::vector<Tcl_Obj *>(words)); }

/* A fixed script (setup and cleanup only; never input-derived). */
void
RunScript(const char *script)
{
    if (Tcl_Eval(interp, script) != TCL_OK) {
	Broken("harness script failed: %s\n%s", Tcl_GetStringResult(interp), script);
    }
}

std::string Result() { return Tcl_GetStringResult(interp); }

std::string
ErrorCode()
{
    Tcl_Obj *options = Tcl_GetReturnOptions(interp, TCL_ERROR);
    Tcl_IncrRefCount(options);
    Tcl_Obj *key = Str("-errorcode");
    Tcl_IncrRefCount(key);
    Tcl_Obj *code = nullptr;
    Tcl_DictObjGet(nullptr, options, key, &code);
    std::string text = code ? Tcl_GetString(code) : "";
    Tcl_DecrRefCount(key);
    Tcl_DecrRefCount(options);
    return text;
}

Tcl_Channel
FindChannel(const std::string &name)
{
    if (name.empty()) {
	return nullptr;
    }
    Tcl_Channel chan = Tcl_GetChannel(interp, name.c_str(), nullptr);
    Tcl_ResetResult(interp);
    return chan;
}

/* One option of a channel, as Tcl reports it ("" if it has none). */
std::string
ChannelOption(Tcl_Channel chan, const char *option)
{
    Tcl_DString ds;
    Tcl_DStringInit(&ds);
    std::string value;
    if (Tcl_GetChannelOption(nullptr, chan, option, &ds) == TCL_OK) {
	value = Tcl_DStringValue(&ds);
    }
    Tcl_DStringFree(&ds);
    return value;
}

/* First element of a Tcl list ("" for an empty list). */
std::string
FirstElement(const std::string &list)
{
    int argc = 0;
    const char **argv = nullptr;
    std::string first;
    if (Tcl_SplitList(nullptr, list.c_str(), &argc, &argv) == TCL_OK) {
	if (argc > 0) {
	    first = argv[0];
	}
	Tcl_Free(reinterpret_cast<char *>(argv));
    }
    return first;
}

/*
 *----------------------------------------------------------------------
 * Files, read and changed from C behind Tcl's back (as another process
 * would).
 *----------------------------------------------------------------------
 */

void
WriteFile(const std::string &path, const std::vector<std::uint8_t> &bytes)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
	Broken("cannot create %s: %s", path.c_str(), std::strerror(errno));
    }
    if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size())
	    != static_cast<ssize_t>(bytes.size())) {
	Broken("short write to %s", path.c_str());
    }
    ::close(fd);
}

NO_COVERAGE std::vector<std::uint8_t>
ReadFile(const std::string &path)
{
    std::vector<std::uint8_t> bytes;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
	Broken("cannot open %s: %s", path.c_str(), std::strerror(errno));
    }
    std::uint8_t buf[4096];
    for (;;) {
	const ssize_t n = ::read(fd, buf, sizeof buf);
	if (n < 0) {
	    Broken("cannot read %s: %s", path.c_str(), std::strerror(errno));
	}
	if (n == 0) {
	    break;
	}
	bytes.insert(bytes.end(), buf, buf + n);
    }
    ::close(fd);
    return bytes;
}

void
TruncateFile(const std::string &path, std::uint64_t size)
{
    if (trace) {
	std::fprintf(stderr, "c> truncate %s %" PRIu64 "\n", path.c_str(), size);
    }
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
	Broken("truncate %s: %s", path.c_str(), std::strerror(errno));
    }
}

/* Does any open descriptor or live mapping still refer to our temp dir? */
NO_COVERAGE void
CheckNothingLeft()
{
    if (DIR *dir = ::opendir("/proc/self/fd")) {
	while (struct dirent *entry = ::readdir(dir)) {
	    char link[512];
	    const std::string path = std::string("/proc/self/fd/") + entry->d_name;
	    const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
	    if (n > 0) {
		link[n] = '\0';
		if (std::strncmp(link, tempDir.c_str(), tempDir.size()) == 0) {
		    Broken("descriptor %s still open on %s after cleanup",
			    entry->d_name, link);
		}
	    }
	}
	::closedir(dir);
    }
    if (std::FILE *maps = std::fopen("/proc/self/maps", "re")) {
	char line[1024];
	while (std::fgets(line, sizeof line, maps)) {
	    if (std::strstr(line, tempDir.c_str()) != nullptr) {
		std::fclose(maps);
		Broken("mapping still present after cleanup: %s", line);
	    }
	}
	std::fclose(maps);
    }
}

/*
 *----------------------------------------------------------------------
 * The model of one input's main region.
 *----------------------------------------------------------------------
 */

struct Region {
    /* Configuration decoded from the header. */
    bool shared = false;
    bool writable = false;
    const char *openMode = "r";
    bool binary = false;
    bool haveLength = false;
    bool haveOffset = false;
    std::uint64_t offset = 0;
    std::uint64_t lengthArg = 0;
    std::uint64_t originalSize = 0;

    /* Live state. */
    std::string src;		/* source channel name; "" once closed */
    std::string chan;		/* mmap channel name; "" when none */
    std::uint64_t length = 0;	/* the mapped length, once mapped */

    /*
     * file: what the file must hold. fileRegionKnown: whether the part of
     * file inside the region is trustworthy (a shared mapping's writes
     * become unpredictable after a shrink or an inexact write).
     * view: what the mapping shows through the channel, valid while
     * viewKnown.
     */
    std::vector<std::uint8_t> file;
    bool fileRegionKnown = true;
    std::vector<std::uint8_t> view;
    bool viewKnown = false;
    /*
     * After [close $chan read|write] Tcl marks that side closed even when
     * the driver refuses the half-close (as Tcl 8.6 does for files too):
     * reads then see EOF and writes fail with EINVAL. The per-operation
     * checks no longer apply; crashes and the file checks still do.
     */
    bool halfClosed = false;
    /* The span of the file any shared writable mapping of this input covered. */
    std::uint64_t sharedLow = UINT64_MAX, sharedHigh = 0;

    std::uint64_t End() const { return offset + length; }
    bool Alive() const { return !chan.empty(); }
};

/*
 * How the main channel currently translates, read back from Tcl rather
 * than tracked, so a bug in the harness's bookkeeping cannot mask (or
 * invent) a bug in the driver.
 */
struct Mode {
    bool exactIn = false;	/* bytes in == chars out: binary + lf */
    bool exactOut = false;	/* chars in == bytes out: binary + lf */
    bool noEofChar = true;	/* no input eofchar */
    bool outEofChar = false;	/* an output eofchar: close writes it */
    bool blocking = true;
    bool unbuffered = true;	/* -buffering none */
};

Mode
CurrentMode(Tcl_Channel chan)
{
    Mode mode;
    const bool binaryEnc = ChannelOption(chan, "-encoding") == "binary";
    const std::string translation = ChannelOption(chan, "-translation");
    int argc = 0;
    const char **argv = nullptr;
    std::string in, out;
    if (Tcl_SplitList(nullptr, translation.c_str(), &argc, &argv) == TCL_OK) {
	if (argc >= 1) { in = argv[0]; }
	out = argc >= 2 ? argv[1] : in;
	Tcl_Free(reinterpret_cast<char *>(argv));
    }
    mode.exactIn = binaryEnc && (in == "lf" || in == "binary");
    mode.exactOut = binaryEnc && (out == "lf" || out == "binary");
    /* -eofchar is {in out} on a read-write channel, one value otherwise. */
    const std::string eofchar = ChannelOption(chan, "-eofchar");
    mode.noEofChar = FirstElement(eofchar).empty();
    if (Tcl_SplitList(nullptr, eofchar.c_str(), &argc, &argv) == TCL_OK) {
	mode.outEofChar = argc >= 2 && argv[1][0] != '\0';
	Tcl_Free(reinterpret_cast<char *>(argv));
    }
    mode.blocking = ChannelOption(chan, "-blocking") == "1";
    mode.unbuffered = ChannelOption(chan, "-buffering") == "none";
    return mode;
}

/*
 * Set while the main channel is half-closed: Tcl refuses [tell] on it
 * then, and the operations skip their checks anyway.
 */
bool tellMayFail = false;

std::int64_t
Tell(Tcl_Channel chan)
{
    const Tcl_WideInt where = Tcl_Tell(chan);
    if (where < 0 && tellMayFail) {
	return 0;
    }
    if (where < 0) {
	Broken("Tcl_Tell failed on the mmap channel (errno %d)", Tcl_GetErrno());
    }
    return static_cast<std::int64_t>(where);
}

std::uint64_t CurrentFileSize() {
    struct stat st;
    if (::stat(mainPath.c_str(), &st) != 0) {
	Broken("stat %s: %s", mainPath.c_str(), std::strerror(errno));
    }
    return static_cast<std::uint64_t>(st.st_size);
}

/*
 * Is file byte index f on a page that lies wholly past the end of a file
 * of size size? Touching such a page through a mapping raises SIGBUS, so
 * the fault guard must turn the access into an error.
 */
bool DeadPage(std::uint64_t f, std::uint64_t size) {
    const std::uint64_t p = static_cast<std::uint64_t>(pageSize);
    return (f / p) * p >= ((size + p - 1) / p) * p;
}

/* The file must match the model (all of it, or all but the region). */
NO_COVERAGE void
CheckFile(const Region &r, const char *when)
{
    const std::vector<std::uint8_t> actual = ReadFile(mainPath);
    if (actual.size() != r.file.size()) {
	Broken("%s: file is %zu bytes, expected %zu", when, actual.size(), r.file.size());
    }
    /* [skipFrom, skipTo): the region of a shared mapping whose bytes are unknown. */
    std::size_t skipFrom = actual.size(), skipTo = actual.size();
    if (r.length != 0 && r.shared && !r.fileRegionKnown) {
	skipFrom = std::min<std::size_t>(r.offset, actual.size());
	skipTo = std::min<std::size_t>(r.End(), actual.size());
    }
    auto compare = [&](std::size_t from, std::size_t to) {
	if (from >= to || std::memcmp(actual.data() + from, r.file.data() + from, to - from) == 0) {
	    return;
	}
	while (actual[from] == r.file[from]) {
	    from++;
	}
	Broken("%s: file byte %zu is 0x%02x, expected 0x%02x (%s mapping,"
		" region [%" PRIu64 ",%" PRIu64 "))", when, from, actual[from],
		r.file[from], r.shared ? "shared" : "private", r.offset, r.End());
    };
    compare(0, skipFrom);
    compare(skipTo, actual.size());
}

/* Checks run after every operation. */
void
CheckAfterOp(Region &r, const char *op)
{
    if (r.Alive()) {
	Tcl_Channel chan = FindChannel(r.chan);
	if (chan == nullptr) {
	    /*
	     * Closed behind CloseMain's back (an event handler, a half-close
	     * of the last side): an output eofchar may have been written.
	     */
	    r.chan.clear();
	    if (r.writable && r.shared) {
		r.fileRegionKnown = false;
	    }
	} else if (Tcl_OutputBuffered(chan) == 0 && !r.halfClosed) {
	    const std::int64_t where = Tell(chan);
	    if (where < 0 || static_cast<std::uint64_t>(where) > r.length) {
		Broken("after %s: tell is %" PRId64 ", outside [0, %" PRIu64 "]",
			op, where, r.length);
	    }
	}
    }
    CheckFile(r, op);
}

/*
 *----------------------------------------------------------------------
 * Decoding values.
 *----------------------------------------------------------------------
 */

/* A count or offset near the interesting places for a region of length. */
std::int64_t
PickValue(Input &in, std::uint64_t length)
{
    static const std::int64_t table[] = {
	0, 1, -1, 4095, 4096, 4097, -4096, INT32_MAX, INT32_MIN,
	static_cast<std::int64_t>(1) << 31, static_cast<std::int64_t>(1) << 32,
	static_cast<std::int64_t>(1) << 40, INT64_MAX, INT64_MIN, INT64_MIN + 1,
	INT64_MAX - 1,
    };
    const std::uint8_t mode = in.Byte();
    const auto len = static_cast<std::int64_t>(length);
    switch (mode % 8) {
    case 0: return static_cast<std::int8_t>(in.Byte());
    case 1: return len + static_cast<std::int8_t>(in.Byte());
    case 2: return in.U16();
    case 3: return -static_cast<std::int64_t>(in.U16());
    case 4: return table[in.Byte() % (sizeof table / sizeof table[0])];
    case 5: return 4096 * static_cast<std::int64_t>(in.Byte() % 5)
		+ static_cast<std::int8_t>(in.Byte());
    default: return len == 0 ? 0 : static_cast<std::int64_t>(in.U16() % (length + 1));
    }
}

/*
 *----------------------------------------------------------------------
 * Creating the main mapping.
 *----------------------------------------------------------------------
 */

/* Would [mmap] accept this range of a regular file of size size? */
bool RangeValid(const Region &r, std::uint64_t size) {
    if (size == 0 || r.offset >= size) {
	return false;
    }
    return !r.haveLength || (r.lengthArg >= 1 && r.lengthArg <= size - r.offset);
}

/*
 * [mmap] the source channel with the decoded options (in either order).
 * Whether it must succeed follows from the range rules and the file's
 * size now; on success the model's view starts as the file's bytes.
 */
void
MapMain(Region &r, bool swapOrder)
{
    std::vector<Tcl_Obj *> words{Str("mmap")};
    if (r.shared) {
	words.push_back(Str("-shared"));
    }
    std::vector<Tcl_Obj *> lengthWords, offsetWords;
    if (r.haveLength) {
	lengthWords = {Str("-length"), Wide(static_cast<std::int64_t>(r.lengthArg))};
    }
    if (r.haveOffset) {
	offsetWords = {Str("-offset"), Wide(static_cast<std::int64_t>(r.offset))};
    }
    if (swapOrder) {
	std::swap(lengthWords, offsetWords);
    }
    words.insert(words.end(), lengthWords.begin(), lengthWords.end());
    words.insert(words.end(), offsetWords.begin(), offsetWords.end());
    words.push_back(Str(r.src));

    const std::uint64_t size = CurrentFileSize();
    const bool expectOk = RangeValid(r, size);
    const int code = Run(words);
    if ((code == TCL_OK) != expectOk) {
	Broken("mmap %s but the range offset %" PRIu64 " length %s%" PRIu64
		" of a %" PRIu64 "-byte file is %s: %s",
		code == TCL_OK ? "succeeded" : "failed", r.offset,
		r.haveLength ? "" : "(default) ", r.lengthArg, size,
		expectOk ? "valid" : "invalid", Result().c_str());
    }
    if (code != TCL_OK) {
	stats.mapFailed++;
	return;
    }
    stats.mapped++;
    r.chan = Result();
    r.length = r.haveLength ? r.lengthArg : size - r.offset;
    Tcl_Channel chan = FindChannel(r.chan);
    if (chan == nullptr) {
	Broken("mmap returned \"%s\", which is not a channel", r.chan.c_str());
    }
    /* The region's length as the channel sees it: seek to the end. */
    if (Tcl_Seek(chan, 0, SEEK_END) != static_cast<Tcl_WideInt>(r.length)
	    || Tcl_Seek(chan, 0, SEEK_SET) != 0) {
	Broken("a fresh mapping of %" PRIu64 " bytes does not seek to its end",
		r.length);
    }
    /* A fresh mapping shows what the file holds now. */
    r.view.assign(r.file.begin() + static_cast<std::ptrdiff_t>(r.offset),
	    r.file.begin() + static_cast<std::ptrdiff_t>(r.End()));
    r.viewKnown = true;
    r.halfClosed = false;
    if (r.shared && r.writable) {
	r.sharedLow = std::min(r.sharedLow, r.offset);
	r.sharedHigh = std::max(r.sharedHigh, r.End());
    }
    if (r.binary && Run({Str("fconfigure"), Str(r.chan), Str("-translation"),
	    Str("binary")}) != TCL_OK) {
	Broken("fconfigure -translation binary failed: %s", Result().c_str());
    }
}

/*
 *----------------------------------------------------------------------
 * Operations on the main channel.
 *----------------------------------------------------------------------
 */

void
OpSeek(Input &in, Region &r)
{
    static const char *const origins[] = {"start", "current", "end"};
    const int origin = in.Byte() % 3;
    const std::int64_t value = PickValue(in, r.length);
    Tcl_Channel chan = FindChannel(r.chan);
    const bool clean = Tcl_OutputBuffered(chan) == 0;
    const std::int64_t before = Tell(chan);
    const std::int64_t base = origin == 0 ? 0 : origin == 1 ? before
	    : static_cast<std::int64_t>(r.length);
    /* In range iff base + value lands in [0, length]; no overflow here. */
    const bool inRange = value >= -base
	    && value <= static_cast<std::int64_t>(r.length) - base;
    const int code = Run({Str("seek"), Str(r.chan), Wide(value), Str(origins[origin])});
    if (!clean || r.halfClosed) {
	return;
    }
    if ((code == TCL_OK) != inRange) {
	Broken("seek %" PRId64 " %s from %" PRId64 " (length %" PRIu64 ") %s",
		value, origins[origin], before, r.length,
		code == TCL_OK ? "succeeded though out of range"
		: ("failed though in range: " + Result()).c_str());
    }
    if (code == TCL_OK && Tell(chan) != base + value) {
	Broken("seek to %" PRId64 " left tell at %" PRId64, base + value, Tell(chan));
    }
    if (code != TCL_OK) {
	stats.failedSeeks++;
	const std::string expected = "error during seek on \"" + r.chan
		+ "\": invalid argument";
	/* A guard message left over from an earlier command would show here. */
	if (Result() != expected) {
	    Broken("seek out of range failed with \"%s\", expected \"%s\"",
		    Result().c_str(), expected.c_str());
	}
    }
}

/*
 * Shared part of the read checks: the bytes a read returned, compared
 * with the model, and the distance [tell] moved.
 */
NO_COVERAGE void
CheckReadResult(Region &r, const char *what, std::int64_t before, std::int64_t after,
	const std::uint8_t *bytes, std::size_t n, std::size_t consumed,
	const Mode &mode)
{
    if (!mode.exactIn) {
	return;
    }
    if (after - before != static_cast<std::int64_t>(consumed)) {
	Broken("%s returned %zu bytes (consuming %zu) but tell moved %" PRId64
		" -> %" PRId64, what, n, consumed, before, after);
    }
    if (!r.viewKnown) {
	return;
    }
    stats.contentChecks++;
    for (std::size_t i = 0; i < n; i++) {
	const std::uint64_t at = static_cast<std::uint64_t>(before) + i;
	if (at >= r.length || bytes[i] != r.view[at]) {
	    Broken("%s at %" PRId64 ": byte %zu is 0x%02x, region byte %" PRIu64
		    " is 0x%02x", what, before, i, bytes[i], at,
		    at < r.length ? r.view[at] : 0);
	}
    }
}

/*
 * What the fault guard promises for a read or a write that failed or
 * succeeded while the file is shorter than the region.
 */
void
CheckGuardError(Region &r, const char *what, const std::string &message,
	const std::string &code)
{
    const std::uint64_t size = CurrentFileSize();
    const std::string needle = "the file shrank to " + std::to_string(size)
	    + " bytes under the mapping, which needs " + std::to_string(r.End());
    if (message.find(needle) == std::string::npos
	    || code.compare(0, 10, "POSIX EIO ") != 0) {
	Broken("%s: fault guard error is \"%s\" (errorcode \"%s\"), expected a message"
		" containing \"%s\" and errorcode POSIX EIO", what, message.c_str(),
		code.c_str(), needle.c_str());
    }
}

void
OpRead(Input &in, Region &r, int kind)
{
    Tcl_Channel chan = FindChannel(r.chan);
    const Mode mode = CurrentMode(chan);
    const bool clean = Tcl_OutputBuffered(chan) == 0 && mode.unbuffered;
    const std::int64_t before = Tell(chan);
    const std::int64_t buffered = Tcl_InputBuffered(chan);
    const bool nothingBuffered = buffered == 0;
    /* An eofchar seen earlier leaves EOF set until a seek (sticky EOF). */
    const bool eofBefore = Tcl_Eof(chan) != 0;
    const std::uint64_t size = CurrentFileSize();
    const bool shrunk = size < r.End();
    std::int64_t asked = -1;
    std::vector<Tcl_Obj *> words{Str("read")};
    const char *what = "read";
    if (kind == 0) {
	asked = PickValue(in, r.length);
	words.push_back(Str(r.chan));
	words.push_back(Wide(asked));
    } else if (kind == 1) {
	what = "read-all";
	words.push_back(Str(r.chan));
    } else if (kind == 2) {
	what = "read -nonewline";
	words.push_back(Str("-nonewline"));
	words.push_back(Str(r.chan));
    } else {
	what = "gets";
	words = {Str("gets"), Str(r.chan), Str("fz_line")};
    }
    stats.reads++;
    const int code = Run(words);
    if (r.halfClosed) {
	return;
    }
    if (code != TCL_OK) {
	stats.readErrors++;
	const std::string message = Result(), errorCode = ErrorCode();
	if (message.find("shrank") != std::string::npos) {
	    stats.guardReadErrors++;
	    CheckGuardError(r, what, message, errorCode);
	    /*
	     * "The failing operation leaves [tell] where it was." Tolerated:
	     * the driver's short read handed Tcl the bytes before the
	     * missing page, which the failing [read] consumed.
	     */
	    const std::uint64_t p = static_cast<std::uint64_t>(pageSize);
	    const std::uint64_t deadAt = (size + p - 1) / p * p;
	    const auto boundary = static_cast<std::int64_t>(
		    deadAt > r.offset ? deadAt - r.offset : 0);
	    const std::int64_t after = Tell(chan);
	    const std::int64_t reach = std::max(before + buffered, boundary);
	    if (clean && after != before
		    && !(toleratePartialTell && after > before && after <= reach)) {
		Broken("%s failed with the fault guard error but moved tell"
			" %" PRId64 " -> %" PRId64, what, before, Tell(chan));
	    }
	} else if (((asked >= 0 && asked <= INT32_MAX) || kind != 0) && mode.exactIn) {
	    /*
	     * A count Tcl accepts (an int >= 0), or a read without one, has no
	     * reason to fail but the fault guard, whose message is checked.
	     * Only with binary input: Tcl 8.6.13 itself fails [gets] with a
	     * stale errno when UTF-8 decoding meets -buffersize 1 (a file
	     * channel does the same).
	     */
	    if (!shrunk) {
		Broken("%s failed on an intact file: %s (errorcode %s)", what,
			message.c_str(), errorCode.c_str());
	    }
	    CheckGuardError(r, what, message, errorCode);
	}
	return;
    }
    /*
     * Success while the position is on a page the file no longer covers,
     * with nothing left in Tcl's buffer: the driver must have read that
     * page, which cannot give bytes.
     */
    if (shrunk && nothingBuffered && !eofBefore && before < static_cast<std::int64_t>(r.length)
	    && DeadPage(r.offset + static_cast<std::uint64_t>(before), size)
	    && (kind != 0 || asked > 0)) {
	Broken("%s at %" PRId64 " succeeded though its page is past the end of the"
		" %" PRIu64 "-byte file: returned \"%s\"", what, before, size,
		Result().substr(0, 40).c_str());
    }
    if (!clean) {
	return;
    }
    const std::int64_t after = Tell(chan);
    if (kind == 3) {
	/* gets: the count; the newline, if one ended the line, is consumed too. */
	Tcl_WideInt count = -2;
	Tcl_GetWideIntFromObj(nullptr, Tcl_GetObjResult(interp), &count);
	Tcl_Obj *line = Tcl_GetVar2Ex(interp, "fz_line", nullptr, 0);
	int n = 0;
	const std::uint8_t *bytes = line ? Tcl_GetByteArrayFromObj(line, &n) : nullptr;
	if (count == -1) {
	    if (mode.exactIn && after != before) {
		Broken("gets returned -1 but moved tell %" PRId64 " -> %" PRId64,
			before, after);
	    }
	    return;
	}
	if (mode.exactIn && count != n) {
	    Broken("gets returned %" PRId64 " for a %d-byte line", static_cast<std::int64_t>(count), n);
	}
	const bool newline = mode.exactIn && after - before == n + 1;
	CheckReadResult(r, what, before, after, bytes, static_cast<std::size_t>(n),
		static_cast<std::size_t>(n) + (newline ? 1 : 0), mode);
	if (newline && r.viewKnown && r.view[static_cast<std::uint64_t>(before + n)] != '\n') {
	    Broken("gets consumed a byte after the line that is not a newline");
	}
	if (!newline && mode.exactIn && r.viewKnown && mode.blocking
		&& static_cast<std::uint64_t>(before + n) < r.length
		&& r.view[static_cast<std::uint64_t>(before + n)] == '\n') {
	    Broken("gets stopped at a newline at %" PRId64 " without consuming it",
		    before + n);
	}
	return;
    }
    int n = 0;
    const std::uint8_t *bytes = Tcl_GetByteArrayFromObj(Tcl_GetObjResult(interp), &n);
    std::size_t consumed = static_cast<std::size_t>(n);
    /* -nonewline drops one final newline that was read. */
    if (kind == 2 && mode.exactIn && after - before == n + 1) {
	consumed++;
    }
    CheckReadResult(r, what, before, after, bytes, static_cast<std::size_t>(n),
	    consumed, mode);
    if (!mode.exactIn || !mode.blocking || !mode.noEofChar || !r.viewKnown || eofBefore) {
	return;
    }
    /* Blocking, no eofchar: a read gets everything it asked for that exists. */
    const std::uint64_t left = r.length - static_cast<std::uint64_t>(before);
    const std::uint64_t want = kind == 0 ? std::min<std::uint64_t>(left,
	    static_cast<std::uint64_t>(asked)) : left;
    if (consumed != want) {
	Broken("%s at %" PRId64 " of a %" PRIu64 "-byte region consumed %zu bytes,"
		" expected %" PRIu64, what, before, r.length, consumed, want);
    }
    if (kind != 0 && (after != static_cast<std::int64_t>(r.length) || !Tcl_Eof(chan))) {
	Broken("%s did not end at EOF: tell %" PRId64 ", eof %d", what, after,
		Tcl_Eof(chan));
    }
}

void
OpPuts(Input &in, Region &r)
{
    const std::uint8_t flags = in.Byte();
    const bool nonewline = flags & 1;
    std::vector<std::uint8_t> data = in.Bytes(in.Byte() % 64);
    Tcl_Channel chan = FindChannel(r.chan);
    /* Sometimes far longer than the region, to exercise the wrap. Not
     * with -sync sync and a tiny -buffersize: every byte would be a
     * driver write waiting for the disk, minutes by design. */
    const bool slowSync = ChannelOption(chan, "-sync") == "sync"
	    && std::atoi(ChannelOption(chan, "-buffersize").c_str()) < 64;
    const unsigned repeat = (flags >> 1) % 4 == 3 && !slowSync ? 1 + (flags >> 3) * 40 : 1;
    if (repeat > 1 && !data.empty()) {
	std::vector<std::uint8_t> longer;
	for (unsigned i = 0; i < repeat && longer.size() < 4 * kMaxFileSize; i++) {
	    longer.insert(longer.end(), data.begin(), data.end());
	}
	data.swap(longer);
    }
    const Mode mode = CurrentMode(chan);
    bool exact = mode.exactOut && mode.unbuffered && Tcl_OutputBuffered(chan) == 0;
    const std::int64_t before = Tell(chan);
    const std::uint64_t size = CurrentFileSize();

    std::vector<Tcl_Obj *> words{Str("puts")};
    if (nonewline) {
	words.push_back(Str("-nonewline"));
    }
    words.push_back(Str(r.chan));
    words.push_back(Bytes(data));
    std::vector<std::uint8_t> written = data;
    if (!nonewline) {
	written.push_back('\n');
    }
    stats.writes++;
    const int code = Run(words);
    const std::string message = code == TCL_OK ? "" : Result();
    const std::string errorCode = code == TCL_OK ? "" : ErrorCode();
    /*
     * Tcl 8.6.13 can keep bytes back even with -buffering none (after
     * -buffersize went down to 1 and up again; files do it too): they
     * reach the region at some later flush, so this write is not exact.
     */
    if (Tcl_OutputBuffered(chan) != 0) {
	exact = false;
    }

    /* Which region bytes does this write touch, and does it hit a dead page? */
    const std::size_t count = written.size();
    const std::size_t keep = std::min<std::size_t>(count, r.length);
    bool touchesDead = false;
    if (r.length != 0) {
	for (std::size_t i = count - keep; i < count; i++) {
	    const std::uint64_t at = (static_cast<std::uint64_t>(before) + i) % r.length;
	    touchesDead = touchesDead || (size < r.End() && DeadPage(r.offset + at, size));
	}
    }

    if (r.halfClosed) {
	r.viewKnown = false;	/* the write may or may not have happened */
	if (r.shared) {
	    r.fileRegionKnown = false;
	}
	return;
    }
    if (!r.writable) {
	if (code == TCL_OK && count > 0) {
	    Broken("puts on a read-only mmap channel succeeded");
	}
	return;
    }
    const bool learnable = exact && r.viewKnown && code == TCL_OK;
    if (!learnable) {
	/* The region (and a shared file region) now holds unknown bytes. */
	r.viewKnown = false;
	if (r.shared) {
	    r.fileRegionKnown = false;
	}
    }
    if (code != TCL_OK) {
	stats.writeErrors++;
	if (message.find("shrank") != std::string::npos) {
	    stats.guardWriteErrors++;
	    CheckGuardError(r, "puts", message, errorCode);
	    if (exact && Tell(chan) != before && !toleratePartialTell) {
		Broken("puts failed with the fault guard error but moved tell"
			" %" PRId64 " -> %" PRId64, before, Tell(chan));
	    }
	    return;
	}
	/*
	 * Not with an encoding: Tcl 8.6.13 fails [puts] with EINVAL when a
	 * multi-byte character meets a tiny -buffersize (files too).
	 */
	if (!mode.exactOut) {
	    return;
	}
	if (size >= r.End()) {
	    Broken("puts of %zu bytes failed on an intact file: %s", count,
		    message.c_str());
	}
	CheckGuardError(r, "puts", message, errorCode);
	return;
    }
    if (exact && touchesDead) {
	Broken("puts of %zu bytes at %" PRId64 " succeeded though it touches a page"
		" past the end of the %" PRIu64 "-byte file", count, before, size);
    }
    if (!exact) {
	return;
    }
    /* An empty write never reaches the driver, so it cannot wrap either. */
    const std::uint64_t expected = count == 0 ? static_cast<std::uint64_t>(before)
	    : (static_cast<std::uint64_t>(before) + count) % r.length;
    if (static_cast<std::uint64_t>(Tell(chan)) != expected) {
	Broken("puts of %zu bytes at %" PRId64 " in a %" PRIu64 "-byte region left"
		" tell at %" PRId64 ", expected %" PRIu64, count, before, r.length,
		Tell(chan), expected);
    }
    if (learnable) {
	for (std::size_t i = count - keep; i < count; i++) {
	    const std::uint64_t at = (static_cast<std::uint64_t>(before) + i) % r.length;
	    r.view[at] = written[i];
	    if (r.shared && r.fileRegionKnown) {
		r.file[r.offset + at] = written[i];
	    }
	}
    }
}

/* The mmap option a (possibly abbreviated) name means; "" if none or ambiguous. */
std::string
MmapOptionFor(const char *given)
{
    const std::size_t n = std::strlen(given);
    std::string found;
    int matches = 0;
    for (const char *name : {"-length", "-offset", "-shared", "-sync"}) {
	if (n > 1 && std::strncmp(given, name, n) == 0) {
	    if (n == std::strlen(name)) {
		return name;
	    }
	    found = name;
	    matches++;
	}
    }
    return matches == 1 ? found : "";
}

/*
 * fconfigure queries, through the command or (with no interpreter, as C
 * callers may do) through Tcl_GetChannelOption. -length, -offset and
 * -shared must match the region; a name that is Tcl's or a unique prefix of
 * ours must be accepted.
 */
void
OpQuery(Input &in, Region &r)
{
    static const char *const options[] = {
	"", "-length", "-offset", "-shared", "-sync", "-translation", "-encoding",
	"-eofchar", "-buffering", "-buffersize", "-blocking", "-bogus", "-len",
	"-l", "-off", "-sh", "-sy", "-s", "-SYNC",
    };
    const std::uint8_t pick = in.Byte();
    const char *option = options[pick % (sizeof options / sizeof options[0])];
    const std::string canonical = MmapOptionFor(option);
    const bool known = *option == '\0' || !canonical.empty()
	    || (option[1] != 's' && option[1] != 'S' && std::strcmp(option, "-bogus") != 0);
    Tcl_Obj *answer = nullptr;
    if ((pick & 0x80) && *option) {
	Tcl_DString ds;
	Tcl_DStringInit(&ds);
	if (Tcl_GetChannelOption(nullptr, FindChannel(r.chan), option, &ds) == TCL_OK) {
	    answer = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
	} else if (known) {
	    Broken("Tcl_GetChannelOption(NULL, %s) failed", option);
	}
	Tcl_DStringFree(&ds);
    } else {
	std::vector<Tcl_Obj *> words{Str("fconfigure"), Str(r.chan)};
	if (*option) {
	    words.push_back(Str(option));
	}
	if (Run(words) == TCL_OK) {
	    answer = Tcl_GetObjResult(interp);
	} else if (known || ErrorCode().rfind("MMAP OPTION UNKNOWN", 0) != 0) {
	    Broken("fconfigure %s failed: %s (errorcode %s)", option, Result().c_str(),
		    ErrorCode().c_str());
	}
    }
    if (answer == nullptr) {
	return;
    }
    if (!known) {
	Broken("fconfigure %s succeeded: \"%s\"", option, Tcl_GetString(answer));
    }
    /* Read the region options out of the answer (all of them or one). */
    Tcl_IncrRefCount(answer);
    auto check = [&](const std::string &name, Tcl_Obj *value) {
	const std::string expected = name == "-length" ? std::to_string(r.length)
		: name == "-offset" ? std::to_string(r.offset)
		: name == "-shared" ? (r.shared ? "1" : "0") : "";
	if (value != nullptr && !expected.empty() && expected != Tcl_GetString(value)) {
	    Broken("fconfigure %s is \"%s\", expected \"%s\"", name.c_str(),
		    Tcl_GetString(value), expected.c_str());
	}
    };
    if (*option == '\0') {
	for (const char *name : {"-length", "-offset", "-shared"}) {
	    Tcl_Obj *key = Str(name);
	    Tcl_IncrRefCount(key);
	    Tcl_Obj *value = nullptr;
	    if (Tcl_DictObjGet(nullptr, answer, key, &value) != TCL_OK) {
		Broken("fconfigure without options did not return a dict");
	    }
	    check(name, value);
	    Tcl_DecrRefCount(key);
	}
    } else if (!canonical.empty()) {
	check(canonical, answer);
    }
    Tcl_DecrRefCount(answer);
}

void
OpConfigure(Input &in, Region &r)
{
    static const char *const settings[][2] = {
	{"-translation", "binary"}, {"-translation", "auto"}, {"-translation", "lf"},
	{"-translation", "crlf"}, {"-translation", "cr"}, {"-encoding", "binary"},
	{"-encoding", "utf-8"}, {"-encoding", "iso8859-1"}, {"-eofchar", ""},
	{"-eofchar", "x"}, {"-buffering", "none"}, {"-buffering", "line"},
	{"-buffering", "full"}, {"-buffersize", "1"}, {"-buffersize", "7"},
	{"-buffersize", "4096"}, {"-buffersize", "100000"}, {"-blocking", "0"},
	{"-blocking", "1"}, {"-sync", "none"}, {"-sync", "async"}, {"-sync", "sync"},
	{"-sync", "bogus"}, {"-length", "5"}, {"-offset", "0"}, {"-shared", "1"},
	{"-bogus", "1"}, {"-translation", "binary"}, {"-translation", "binary"},
	{"-sy", "sync"}, {"-s", "none"}, {"-len", "5"}, {"-sync", ""}, {"-SYNC", "none"},
    };
    const std::uint8_t pick = in.Byte();
    const auto &setting = settings[pick % (sizeof settings / sizeof settings[0])];
    if (pick & 0x80) {
	/* As a C caller would, with no interpreter for the message. */
	Tcl_SetChannelOption(nullptr, FindChannel(r.chan), setting[0], setting[1]);
    } else {
	Run({Str("fconfigure"), Str(r.chan), Str(setting[0]), Str(setting[1])});
    }
}

/*
 * Make the file shorter than (or as long as) it is, from C or through a
 * Tcl channel, like another process or the script itself would.
 */
void
OpShrink(Input &in, Region &r)
{
    const std::uint8_t how = in.Byte();
    const std::uint8_t which = in.Byte();
    const std::uint64_t current = r.file.size();
    const std::uint64_t p = static_cast<std::uint64_t>(pageSize);
    const std::uint64_t last = r.length ? r.End() - 1 : 0;
    std::uint64_t size;
    switch (which % 8) {
    case 0: size = 0; break;
    case 1: size = r.offset; break;
    case 2: size = last; break;
    case 3: size = (last / p) * p; break;
    case 4: size = (last / p) * p - std::min<std::uint64_t>((last / p) * p, 1); break;
    case 5: size = r.offset + r.length / 2; break;
    case 6: size = current ? current - 1 : 0; break;
    default: size = current ? in.U16() % current : 0; break;
    }
    if (size > current || !shrinkEnabled) {
	return;
    }
    stats.shrinks++;
    bool done = false;
    if (how % 3 == 1 && !r.src.empty() && std::strcmp(r.openMode, "r") != 0) {
	/* [chan truncate] on the channel the region was mapped from. */
	done = Run({Str("chan"), Str("truncate"), Str(r.src), Wide(static_cast<std::int64_t>(size))}) == TCL_OK;
	if (!done) {
	    Broken("chan truncate %s %" PRIu64 " failed: %s", r.src.c_str(), size, Result().c_str());
	}
    } else if (how % 3 == 2) {
	/* [chan truncate] on another channel of the same file. */
	if (Run({Str("open"), Str(mainPath), Str("r+")}) != TCL_OK) {
	    Broken("cannot open %s r+: %s", mainPath.c_str(), Result().c_str());
	}
	const std::string other = Result();
	done = Run({Str("chan"), Str("truncate"), Str(other), Wide(static_cast<std::int64_t>(size))}) == TCL_OK;
	Run({Str("close"), Str(other)});
    }
    if (!done) {
	TruncateFile(mainPath, size);
    }
    r.file.resize(size);
    if (r.length != 0 && size < r.End()) {
	/* Region bytes past the cut are gone and pages past it must fault. */
	r.viewKnown = false;
    }
}

/* Make the file longer again; the new bytes read as zeros. */
void
OpGrow(Input &in, Region &r)
{
    const std::uint8_t which = in.Byte();
    const std::uint64_t current = r.file.size();
    std::uint64_t size;
    switch (which % 4) {
    case 0: size = r.originalSize; break;
    case 1: size = r.End(); break;
    case 2: size = r.originalSize + in.Byte() * 17; break;
    default: size = current + in.Byte(); break;
    }
    if (size < current || !shrinkEnabled) {
	return;
    }
    stats.grows++;
    TruncateFile(mainPath, size);
    r.file.resize(size, 0);
    /*
     * Region bytes between the old end of file and the end of its page
     * may have been written through a shared mapping while the file was
     * short: the kernel keeps them in the page cache (tmpfs) or zeroes
     * them at write-back (ext4), so after growing they read as either.
     * Take them from the file; bytes there that no shared mapping of
     * this input covered must still be zeros.
     */
    if (r.sharedLow < r.sharedHigh) {
	const std::uint64_t p = static_cast<std::uint64_t>(pageSize);
	const std::uint64_t tailEnd = std::min<std::uint64_t>(size, (current + p - 1) / p * p);
	const std::uint64_t from = std::max<std::uint64_t>(current, r.sharedLow);
	const std::uint64_t to = std::min<std::uint64_t>(tailEnd, r.sharedHigh);
	if (from < to) {
	    const std::vector<std::uint8_t> actual = ReadFile(mainPath);
	    std::copy(actual.begin() + static_cast<std::ptrdiff_t>(from),
		    actual.begin() + static_cast<std::ptrdiff_t>(to),
		    r.file.begin() + static_cast<std::ptrdiff_t>(from));
	}
    }
}

/* Event handlers: the driver's timer-based fileevent. */
void
OpEvent(Input &in, Region &r)
{
    const std::uint8_t how = in.Byte();
    const char *direction = (how & 1) ? "writable" : "readable";
    switch ((how >> 1) % 4) {
    case 0:
	Run({Str("chan"), Str("event"), Str(r.chan), Str(direction), Str("incr ::fz_events")});
	break;
    case 1:
	Run({Str("chan"), Str("event"), Str(r.chan), Str(direction), Str("")});
	break;
    case 2: {
	/* A handler that closes the channel it was called for. */
	Tcl_Obj *script = Tcl_NewListObj(0, nullptr);
	Tcl_ListObjAppendElement(nullptr, script, Str("close"));
	Tcl_ListObjAppendElement(nullptr, script, Str(r.chan));
	Run({Str("chan"), Str("event"), Str(r.chan), Str(direction), script});
	break;
    }
    default:
	/*
	 * Not [update]: a region is always ready, so a handler that stays
	 * registered is called again and again and [update] never returns
	 * (as with a regular file). Run a bounded number of events instead.
	 */
	for (int i = 1 + in.Byte() % 8; i > 0; i--) {
	    if (!Tcl_DoOneEvent(TCL_DONT_WAIT | TCL_ALL_EVENTS)) {
		break;
	    }
	}
	break;
    }
}

/* Copy bytes out of (or into) the region with [chan copy]. */
void
OpCopy(Input &in, Region &r)
{
    const std::uint8_t how = in.Byte();
    const std::int64_t size = PickValue(in, r.length);
    WriteFile(scratchPath, std::vector<std::uint8_t>(in.Byte() * 7u, 'c'));
    if (Run({Str("open"), Str(scratchPath), Str("r+")}) != TCL_OK) {
	Broken("cannot open the scratch file: %s", Result().c_str());
    }
    const std::string other = Result();
    Run({Str("fconfigure"), Str(other), Str("-translation"), Str("binary")});
    Tcl_Channel chan = FindChannel(r.chan);
    const Mode mode = CurrentMode(chan);
    const bool clean = mode.unbuffered && Tcl_OutputBuffered(chan) == 0;
    const std::int64_t before = Tell(chan);
    if (how & 1) {
	/*
	 * Into the region: the bytes land wherever; forget the contents.
	 * Tcl 8.6's [chan copy] writes without first dropping the target's
	 * read-ahead (a plain file shows it too: the bytes land after the
	 * read-ahead and [tell] is off), which on a region can make [tell]
	 * negative. Drop it here as a careful script would, to keep that
	 * Tcl issue out of the way.
	 */
	if (Tcl_InputBuffered(chan) > 0) {
	    Run({Str("seek"), Str(r.chan), Wide(before)});
	}
	Run({Str("chan"), Str("copy"), Str(other), Str(r.chan), Str("-size"), Wide(size)});
	if (r.writable) {
	    r.viewKnown = false;
	    if (r.shared) {
		r.fileRegionKnown = false;
	    }
	}
    } else {
	const int code = Run({Str("chan"), Str("copy"), Str(r.chan), Str(other),
		Str("-size"), Wide(size)});
	if (code == TCL_OK && clean && mode.exactIn && !r.halfClosed) {
	    Tcl_WideInt copied = -1;
	    Tcl_GetWideIntFromObj(nullptr, Tcl_GetObjResult(interp), &copied);
	    if (Tell(chan) - before != copied) {
		Broken("chan copy moved %" PRId64 " bytes but tell moved %" PRId64
			" -> %" PRId64, static_cast<std::int64_t>(copied), before, Tell(chan));
	    }
	}
    }
    Run({Str("close"), Str(other)});
}

/* Close the main channel, checking what close promises. */
void
CloseMain(Region &r, const char *why)
{
    Tcl_Channel chan = FindChannel(r.chan);
    if (chan == nullptr) {
	r.chan.clear();
	return;
    }
    /*
     * Tcl writes an output eofchar at the position when it closes a
     * channel: one more (wrapping) write, which can meet the fault guard.
     */
    const bool writesEofChar = r.writable && CurrentMode(chan).outEofChar;
    if (writesEofChar) {
	r.viewKnown = false;
	if (r.shared) {
	    r.fileRegionKnown = false;
	}
    }
    const bool clean = Tcl_OutputBuffered(chan) == 0 && !writesEofChar;
    const int code = Run({Str("close"), Str(r.chan)});
    r.chan.clear();
    if (code != TCL_OK) {
	stats.closeErrors++;
	/* Only flushing Tcl's own buffered output can fail (the guard). */
	if (clean) {
	    Broken("%s: close failed with nothing buffered: %s", why, Result().c_str());
	}
    }
}

/*
 *----------------------------------------------------------------------
 * Fuzzing the [mmap] command line itself, on a separate scratch file (or
 * a device, a pipe, a stacked or reflected channel).
 *----------------------------------------------------------------------
 */

void
OpCommandLine(Input &in, Region &r)
{
    static const char *const words[] = {
	"-shared", "-length", "-offset", "-s", "-l", "-o", "-len", "-off", "-SHARED",
	"-", "--", "-bogus", "", "0", "1", "-1", "4095", "4096", "4097", "8192",
	"12288", "65536", "2147483647", "2147483648", "4294967296",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808",
	"18446744073709551616", "0x1000", "010", " 5", "5 ", "1e3", "1.0", "abc",
	"1099511627776", "0b101", "+7",
    };
    stats.cmdlines++;
    const std::uint8_t target = in.Byte();
    const std::uint16_t scratchSize = in.U16() % (kMaxFileSize + 1);
    std::vector<std::uint8_t> content(scratchSize);
    for (std::size_t i = 0; i < content.size(); i++) {
	content[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    WriteFile(scratchPath, content);

    std::string name;
    bool mayWrite = false;	/* writing cannot disturb the main model */
    std::vector<std::string> toClose;
    auto open = [&](const std::string &path, const char *mode) {
	if (Run({Str("open"), Str(path), Str(mode)}) != TCL_OK) {
	    return std::string();
	}
	toClose.push_back(Result());
	return Result();
    };
    switch (target % 12) {
    case 0: name = open(scratchPath, "r+"); mayWrite = true; break;
    case 1: name = open(scratchPath, "r"); break;
    case 2: name = open(scratchPath, "w"); break;
    case 3: name = r.src; break;
    case 4: name = r.chan; break;
    case 5: name = open("/dev/zero", "r+"); mayWrite = true; break;
    case 6: name = open("/dev/zero", "r"); break;
    case 7: {
	/* Any bytes, as Tcl text (each byte one character). */
	Tcl_Obj *raw = Bytes(in.Bytes(in.Byte() % 8));
	Tcl_IncrRefCount(raw);
	name = Tcl_GetString(raw);
	Tcl_DecrRefCount(raw);
	break;
    }
    case 8:
	/* A pipe: has a descriptor, but it is not a file. */
	if (Run({Str("chan"), Str("pipe")}) == TCL_OK) {
	    Tcl_Obj *pair = Tcl_GetObjResult(interp);
	    Tcl_Obj *end = nullptr;
	    for (int i = 0; i < 2; i++) {
		Tcl_ListObjIndex(nullptr, pair, i, &end);
		toClose.push_back(Tcl_GetString(end));
	    }
	    name = toClose[0];
	}
	break;
    case 9:
	/* A transform stacked on a file: [mmap] maps the bottom channel. */
	name = open(scratchPath, "r");
	if (!name.empty()) {
	    Run({Str("zlib"), Str("push"), Str("inflate"), Str(name)});
	}
	break;
    case 10:
	/* A reflected channel: no descriptor at all. */
	if (Run({Str("chan"), Str("create"), Str("read"), Str("::fz::reflect")}) == TCL_OK) {
	    name = Result();
	    toClose.push_back(name);
	}
	break;
    default:
	/* An mmap channel under a transform. */
	name = open(scratchPath, "r");
	if (!name.empty() && Run({Str("mmap"), Str(name)}) == TCL_OK) {
	    name = Result();
	    toClose.push_back(name);
	    Run({Str("zlib"), Str("push"), Str("inflate"), Str(name)});
	}
	break;
    }

    std::vector<Tcl_Obj *> argv{Str("mmap")};
    const std::uint8_t shape = in.Byte();
    /*
     * Half the time a well-formed -offset/-length pair with values near
     * the interesting limits (page sizes, 2^31, 2^32, INT64_MAX), which
     * random words seldom line up into; otherwise 0..6 random words.
     */
    static const char *const numbers[] = {
	"0", "1", "4095", "4096", "4097", "8192", "12288", "65536", "2147483648",
	"4294967296", "1099511627776", "9223372036854775806", "9223372036854775807",
	"-1",
    };
    constexpr std::size_t nnumbers = sizeof numbers / sizeof numbers[0];
    if (shape & 0x80) {
	argv.push_back(Str("-offset"));
	argv.push_back(Str(numbers[in.Byte() % nnumbers]));
	argv.push_back(Str("-length"));
	argv.push_back(Str(numbers[in.Byte() % nnumbers]));
	if (shape & 0x40) {
	    argv.push_back(Str("-shared"));
	}
    }
    const int nwords = (shape & 0x80) ? 0 : shape % 7;
    for (int i = 0; i < nwords; i++) {
	const std::uint8_t pick = in.Byte();
	if (pick < 200) {
	    argv.push_back(Str(words[pick % (sizeof words / sizeof words[0])]));
	} else if (pick < 230) {
	    argv.push_back(Wide(static_cast<std::int64_t>(scratchSize) + (pick % 5) - 2));
	} else {
	    argv.push_back(Bytes(in.Bytes(in.Byte() % 12)));
	}
    }
    if (!(target & 0x80)) {
	argv.push_back(Str(name));	/* else: the channel name is left out */
    }
    if (Run(argv) == TCL_OK) {
	stats.cmdlineMapped++;
	const std::string mapped = Result();
	toClose.push_back(mapped);
	/* A few bounded operations on it (no read-all: devices can be huge). */
	const int nops = in.Byte() % 5;
	for (int i = 0; i < nops; i++) {
	    const std::uint8_t op = in.Byte();
	    switch (op % 4) {
	    case 0:
		Run({Str("read"), Str(mapped), Wide(in.U16() % 5000)});
		break;
	    case 1:
		Run({Str("seek"), Str(mapped), Wide(PickValue(in, scratchSize)),
			Str((op & 4) ? "end" : "start")});
		break;
	    case 2:
		if (mayWrite) {
		    const std::vector<std::uint8_t> data = in.Bytes(in.Byte() % 32);
		    Run({Str("puts"), Str(mapped), Bytes(data)});
		}
		break;
	    default:
		Run({Str("fconfigure"), Str(mapped)});
		break;
	    }
	}
    }
    /* Close in reverse order of creation: the mapping before its source. */
    for (auto it = toClose.rbegin(); it != toClose.rend(); ++it) {
	Run({Str("close"), Str(*it)});
    }
    /* The main model is untouched: the harness never writes through these. */
    (void)r;
}

/* [mmap::sync] with plausible and implausible arguments. */
void
OpSync(Input &in, Region &r)
{
    std::vector<Tcl_Obj *> words{Str("mmap::sync")};
    const std::uint8_t how = in.Byte();
    switch (how % 5) {
    case 0: case 1: words.push_back(Str(r.chan)); break;
    case 2: if (!r.src.empty()) { words.push_back(Str(r.src)); } break;
    case 3: words.push_back(Str("nosuchchannel")); break;
    default: words.push_back(Str(r.chan)); words.push_back(Str("extra")); break;
    }
    Run(words);
}

/*
 *----------------------------------------------------------------------
 * One input.
 *----------------------------------------------------------------------
 */

NO_COVERAGE void
DecodeRegion(Input &in, Region &r, bool &swapOrder)
{
    static const std::uint64_t specialSizes[] = {
	1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 12287, 12288, 12289, kMaxFileSize,
    };
    const std::uint8_t flags = in.Byte();
    r.shared = flags & 1;
    static const char *const modes[] = {"r", "r+", "r+", "a+"};
    r.openMode = modes[(flags >> 1) & 3];
    r.writable = std::strcmp(r.openMode, "r") != 0;
    r.binary = flags & 8;
    r.haveLength = flags & 16;
    const std::uint16_t sizeSel = in.U16();
    std::uint64_t size = (sizeSel & 0x8000)
	    ? specialSizes[(sizeSel & 0x7fff) % (sizeof specialSizes / sizeof specialSizes[0])]
	    : 1 + sizeSel % kMaxFileSize;
    const std::uint16_t offsetValue = in.U16();
    const std::uint16_t lengthValue = in.U16();
    switch (flags >> 5) {
    case 0: r.haveOffset = false; r.offset = 0; break;
    case 1: r.haveOffset = true; r.offset = 0; break;
    case 3: r.haveOffset = true; r.offset = (offsetValue % 4) * kPage; break;
    case 5: r.haveOffset = true; r.offset = offsetValue; break;	/* may be past the end */
    case 6: r.haveOffset = true; r.offset = size - 1; break;
    default: r.haveOffset = true; r.offset = offsetValue % size; break;
    }
    if (r.haveLength) {
	if ((lengthValue & 0x8000) || r.offset >= size) {
	    r.lengthArg = lengthValue & 0x7fff;	/* may be 0 or too long */
	} else {
	    r.lengthArg = 1 + lengthValue % (size - r.offset);
	}
    }
    swapOrder = flags & 2;

    /* Contents: a pattern with newlines every `spacing` bytes for [gets]. */
    const std::uint8_t content = in.Byte();
    const unsigned spacing = 1 + (content & 31);
    r.file.resize(size);
    for (std::uint64_t i = 0; i < size; i++) {
	r.file[i] = (content & 0x80) || (i + 1) % spacing != 0
		? static_cast<std::uint8_t>(i * 131 + content * 7 + (i >> 8)) : '\n';
    }
    r.originalSize = size;
}

void
RunInput(Input &in)
{
    Region r;
    bool swapOrder = false;
    DecodeRegion(in, r, swapOrder);
    WriteFile(mainPath, r.file);
    if (Run({Str("open"), Str(mainPath), Str(r.openMode)}) != TCL_OK) {
	Broken("cannot open %s: %s", mainPath.c_str(), Result().c_str());
    }
    r.src = Result();
    MapMain(r, swapOrder);
    CheckAfterOp(r, "mmap");

    for (int i = 0; i < kMaxOps && !in.Empty(); i++) {
	const std::uint8_t op = in.Byte();
	stats.ops++;
	tellMayFail = r.halfClosed;
	const char *name = "?";
	switch (op % 20) {
	case 0: name = "seek"; if (r.Alive()) { OpSeek(in, r); } break;
	case 1: name = "read"; if (r.Alive()) { OpRead(in, r, 0); } break;
	case 2: name = "read-all"; if (r.Alive()) { OpRead(in, r, 1); } break;
	case 3: name = "read -nonewline"; if (r.Alive()) { OpRead(in, r, 2); } break;
	case 4: name = "gets"; if (r.Alive()) { OpRead(in, r, 3); } break;
	case 5: case 6: name = "puts"; if (r.Alive()) { OpPuts(in, r); } break;
	case 7: name = "tell/eof";
	    if (r.Alive()) {
		Run({Str((op & 0x80) ? "eof" : "tell"), Str(r.chan)});
	    }
	    break;
	case 8: name = "fconfigure query"; if (r.Alive()) { OpQuery(in, r); } break;
	case 9: name = "fconfigure set"; if (r.Alive()) { OpConfigure(in, r); } break;
	case 10: name = "shrink"; OpShrink(in, r); break;
	case 11: name = "grow"; OpGrow(in, r); break;
	case 12: name = "mmap command line"; OpCommandLine(in, r); break;
	case 13: name = "flush/sync";
	    if (r.Alive()) {
		if (op & 0x80) {
		    Run({Str("flush"), Str(r.chan)});
		} else {
		    OpSync(in, r);
		}
	    }
	    break;
	case 14: name = "close source";
	    if (!r.src.empty()) {
		Run({Str("close"), Str(r.src)});
		r.src.clear();
	    }
	    break;
	case 15: name = "remap";
	    /* A new mapping of the file as it is now. */
	    CloseMain(r, "remap");
	    CheckFile(r, "close before remap");
	    if (!r.src.empty()) {
		r.file = ReadFile(mainPath);
		r.fileRegionKnown = true;
		MapMain(r, op & 0x80);
	    }
	    break;
	case 16: name = "event"; if (r.Alive()) { OpEvent(in, r); } break;
	case 17: name = "chan copy"; if (r.Alive()) { OpCopy(in, r); } break;
	case 18: name = "misc";
	    if (r.Alive()) {
		/* Things a region does not support, or only half. */
		switch (in.Byte() % 4) {
		case 0: Run({Str("chan"), Str("truncate"), Str(r.chan)}); break;
		case 1:
		    Run({Str("close"), Str(r.chan), Str("read")});
		    r.halfClosed = true;
		    break;
		case 2:
		    /* Tcl flushes and writes an output eofchar first. */
		    Run({Str("close"), Str(r.chan), Str("write")});
		    r.halfClosed = true;
		    if (r.writable) {
			r.viewKnown = false;
			if (r.shared) {
			    r.fileRegionKnown = false;
			}
		    }
		    break;
		default: Run({Str("chan"), Str("pending"), Str("input"), Str(r.chan)}); break;
		}
	    }
	    break;
	default: name = "close"; if (r.Alive()) { CloseMain(r, "close op"); } break;
	}
	CheckAfterOp(r, name);
    }

    /* Cleanup: everything this input opened goes away. */
    if (r.Alive()) {
	CloseMain(r, "final close");
    }
    CheckFile(r, "after the final close");
    static Tcl_Obj *cleanup = nullptr;
    if (cleanup == nullptr) {
	/* Kept (and byte-compiled) across inputs. */
	cleanup = Tcl_NewStringObj(
		"foreach c [chan names] {"
		"    if {$c ni {stdin stdout stderr}} { catch {close $c} }"
		"}\n"
		"set ::fz_events 0; unset -nocomplain ::fz_line", -1);
	Tcl_IncrRefCount(cleanup);
    }
    if (Tcl_EvalObjEx(interp, cleanup, TCL_EVAL_GLOBAL) != TCL_OK) {
	Broken("cleanup failed: %s", Result().c_str());
    }
    /* Fire (and so drop) any timer the driver may have left behind. */
    for (int i = 0; i < 100 && Tcl_DoOneEvent(TCL_DONT_WAIT | TCL_ALL_EVENTS); i++) {
    }
    Tcl_ResetResult(interp);
    ::unlink(mainPath.c_str());
    ::unlink(scratchPath.c_str());
    CheckNothingLeft();
}

void
PrintStats()
{
    std::fprintf(stderr,
	    "fuzz_mmap stats: inputs=%lu mapped=%lu map_refused=%lu ops=%lu reads=%lu"
	    " read_errors=%lu writes=%lu write_errors=%lu shrinks=%lu grows=%lu"
	    " guard_read_errors=%lu guard_write_errors=%lu content_checks=%lu"
	    " failed_seeks=%lu close_errors=%lu cmdlines=%lu cmdline_mapped=%lu\n",
	    stats.inputs, stats.mapped, stats.mapFailed, stats.ops, stats.reads,
	    stats.readErrors, stats.writes, stats.writeErrors, stats.shrinks, stats.grows,
	    stats.guardReadErrors, stats.guardWriteErrors, stats.contentChecks,
	    stats.failedSeeks, stats.closeErrors, stats.cmdlines, stats.cmdlineMapped);
}

void
RemoveTempDir()
{
    ::unlink(mainPath.c_str());
    ::unlink(scratchPath.c_str());
    ::rmdir(tempDir.c_str());
}

} // namespace

extern "C" int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    pageSize = ::sysconf(_SC_PAGESIZE);
    if (pageSize != static_cast<long>(kPage)) {
	std::fprintf(stderr, "fuzz_mmap: page size %ld; the size tables assume 4096\n",
		pageSize);
    }
    const char *env = std::getenv("MMAP_FUZZ_SHRINK");
    shrinkEnabled = env == nullptr || std::strcmp(env, "0") != 0;
#ifdef FUZZ_NO_SHRINK
    shrinkEnabled = false;
#endif
    trace = std::getenv("MMAP_FUZZ_TRACE") != nullptr;
    if (const char *t = std::getenv("MMAP_FUZZ_TOLERATE")) {
	toleratePartialTell = std::strstr(t, "partial-tell") != nullptr;
    }
    if (const char *s = std::getenv("MMAP_FUZZ_STATS"); s && std::strcmp(s, "0") != 0) {
	std::atexit(PrintStats);
    }
    std::fprintf(stderr, "fuzz_mmap: shrink operations %s\n",
	    shrinkEnabled ? "on" : "off (MMAP_FUZZ_SHRINK=0)");

    /*
     * The files live in MMAP_FUZZ_TMPDIR (libfuzzer.sh points it at
     * /dev/shm when it can: on a disk, every msync of a shared mapping
     * waits for the device), else TMPDIR, else /tmp.
     */
    const char *tmp = std::getenv("MMAP_FUZZ_TMPDIR");
    if (tmp == nullptr || *tmp == '\0') {
	tmp = std::getenv("TMPDIR");
    }
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fuzz_mmap.XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
	Broken("mkdtemp %s: %s", pattern.c_str(), std::strerror(errno));
    }
    tempDir = buf.data();
    mainPath = tempDir + "/main.bin";
    scratchPath = tempDir + "/scratch.bin";
    std::atexit(RemoveTempDir);

    Tcl_FindExecutable((*argv)[0]);
    interp = Tcl_CreateInterp();
    if (Mmap_Init(interp) != TCL_OK) {
	Broken("Mmap_Init failed: %s", Tcl_GetStringResult(interp));
    }
    /*
     * A reflected channel command for the NOFD case, and a background
     * error handler that stays quiet (a closing event handler can make
     * Tcl report errors in the background; they are expected).
     */
    RunScript(
	"namespace eval ::fz {}\n"
	"proc ::fz::reflect {cmd chan args} {\n"
	"    switch -- $cmd {\n"
	"        initialize { return {initialize finalize watch read} }\n"
	"        read { return {} }\n"
	"        default { return }\n"
	"    }\n"
	"}\n"
	"interp bgerror {} {apply {args {}}}\n"
	"set ::fz_events 0\n");
    return 0;
}

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    stats.inputs++;
    Input in(data, size);
    RunInput(in);
    return 0;
}

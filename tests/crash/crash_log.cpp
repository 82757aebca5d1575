/*
 * crash_log.cpp --
 *
 *	Crash and power-loss tests of the log format layer, generic/mmapLog.h,
 *	on its own (no Tcl). Built with -DMMAPLOG_CRASHTEST, so that
 *	MMAPLOG_CRASH_POINT() follows every store an append, a drop commit and
 *	the fence make into the mapping.
 *
 *	crash_log crash [quick|full]
 *	    Crash points, enumerated. For each append shape (a small record,
 *	    an exact fit to the area's end, a wrap, a wrap marker with 8, 16
 *	    and 24 bytes left, a maximum-size message, drops of one, several
 *	    and all records, with the head at the area's end too, a damaged
 *	    oldest record, three records in one call, and the fence itself) and each stop point k = 1,
 *	    2, ... until the operation completes without stopping: a child
 *	    maps the file (MAP_SHARED), runs the operation and _exit()s at
 *	    stop k, after checking, still at stop k, that a reader of its own
 *	    mapping sees a sound log. The parent then maps the file afresh and
 *	    checks: the committed state passes Snapshot's checks; every record
 *	    acknowledged before is there, exact, unless the state dropped it;
 *	    no record comes back that was not acknowledged under its number
 *	    (the one being appended may be there once committed, exact);
 *	    records + damaged = next - oldest, damaged only the record the
 *	    shape damaged; the next append works and reads back.
 *
 *	crash_log power [quick|full] [nofence]
 *	    (quick: every third subset of pages, no sector mixes)
 *	    Power loss. For each scenario: records appended and the file
 *	    copied as `sync` leaves it (A), more appended unsynced (B); then
 *	    files mixed from A and B: every subset of 4 KiB pages; by 512-byte
 *	    sector, prefixes, suffixes, single sectors and their complements,
 *	    alternations, and a seeded set; one page torn at each sector. For
 *	    each: open, check, fence (a writable open), append, reopen, check:
 *	    every record synced and not dropped by the appends since (B's or
 *	    the new ones) is there and exact; nothing comes back under a
 *	    number it was not appended under (B's records only under a state
 *	    from B, the new ones exact); records + damaged = next - oldest,
 *	    damage only where the mix lost bytes; another append works.
 *	    Then, from a few of those mixes, a second power loss: the
 *	    restarted writer fences (durably), appends more unsynced, and
 *	    the same mixes are made of the copy after its fence and the
 *	    later one.
 *	    nofence: skip the fence, and take the second loss's synced copy
 *	    before the fence (a fence not made durable), to see what they
 *	    prevent (expect rules broken: they are counted).
 *
 *	Either mode takes --dump DIR N after it: every Nth file the parent
 *	opens after a crash point, and every Nth power-loss mix (before it is
 *	opened), is also written to DIR as crash-K.log or power-K.log, for
 *	tests/logformat.test to read with its second reader.
 *
 *	Prints the counts; exits 1 after printing the first broken rule.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../../generic/mmapLog.h"

namespace {

using mmaplog::Log;
using mmaplog::State;
using mmaplog::Status;

/* --dump DIR N: where to write every Nth file looked at (none: empty). */
std::string dumpDir;
std::uint64_t dumpEvery = 0, dumpSeen = 0, dumpWritten = 0;

void Dump(const char *kind, const unsigned char *bytes, std::size_t size) {
    if (dumpDir.empty() || dumpSeen++ % dumpEvery != 0) {
	return;
    }
    const std::string path = dumpDir + "/" + kind + "-" + std::to_string(dumpWritten++) + ".log";
    FILE *f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(bytes, 1, size, f) != size || std::fclose(f) != 0) {
	std::fprintf(stderr, "crash_log: cannot write %s\n", path.c_str());
	_exit(1);
    }
}

[[noreturn]] void Broken(const std::string &where, const std::string &what) {
    std::fprintf(stderr, "crash_log: %s: %s\n", where.c_str(), what.c_str());
    std::fflush(stderr);
    _exit(1);
}

std::string Text(std::uint64_t n) { return std::to_string(n); }

/* What a check expects of a log. */
struct Expect {
    std::map<std::uint64_t, std::string> acked;	/* number -> content, exact */
    std::set<std::uint64_t> mayLack;	/* numbers that may be missing (damaged) */
    /* Numbers from which on (up to next) records are new: content given. */
    std::map<std::uint64_t, std::string> fresh;
};

/* A read of the whole log, its records and the info-style counts. */
struct Seen {
    State start, state;
    std::map<std::uint64_t, std::string> records;	/* those >= oldest */
    std::uint64_t oldest = 0, next = 0, damaged = 0;
    std::uint64_t readDamaged = 0;
};

Seen ReadLog(const Log &log, const std::string &where) {
    Seen seen;
    mmaplog::ReadResult result;
    std::vector<std::pair<std::uint64_t, std::string>> all;
    const Status status = log.Read(mmaplog::ReadRequest(), result,
	    [&](std::uint64_t seq, std::int64_t, const char *bytes, std::uint32_t length) {
	all.emplace_back(seq, std::string(bytes, length));
	return true;
    });
    if (status != Status::Ok) {
	Broken(where, "read failed: status " + Text(static_cast<int>(status)));
    }
    seen.start = result.start;
    seen.state = result.state;
    seen.next = result.start.nextSeq;
    seen.oldest = std::min(std::max(result.state.tailSeq, result.start.tailSeq), seen.next);
    std::uint64_t previous = 0;
    for (const auto &r : all) {
	if (r.first <= previous && previous != 0) {
	    Broken(where, "records out of order at " + Text(r.first));
	}
	previous = r.first;
	if (r.first >= seen.oldest) {
	    seen.records.insert(r);
	}
    }
    seen.damaged = seen.next - seen.oldest - seen.records.size();
    seen.readDamaged = result.damaged;
    return seen;
}

/* The rules every check holds a log to; returns what was read. */
Seen CheckLog(const Log &log, const Expect &expect, const std::string &where) {
    State state;
    const Status snap = log.Snapshot(state);
    if (snap != Status::Ok) {
	Broken(where, "the committed state fails its checks (status "
		+ Text(static_cast<int>(snap)) + ")");
    }
    const Seen seen = ReadLog(log, where);
    for (const auto &r : seen.records) {
	if (r.first >= seen.next) {
	    Broken(where, "record " + Text(r.first) + " at or past next " + Text(seen.next));
	}
	auto a = expect.acked.find(r.first);
	auto f = expect.fresh.find(r.first);
	if (a != expect.acked.end()) {
	    if (a->second != r.second) {
		Broken(where, "record " + Text(r.first) + " is not what was acknowledged");
	    }
	} else if (f != expect.fresh.end()) {
	    if (f->second != r.second) {
		Broken(where, "new record " + Text(r.first) + " reads back wrong: \""
			+ r.second.substr(0, 40) + "\"");
	    }
	} else {
	    Broken(where, "record " + Text(r.first) + " was never acknowledged under its"
		    " number: \"" + r.second.substr(0, 40) + "\"");
	}
    }
    for (std::uint64_t n = seen.oldest; n < seen.next; n++) {
	if (seen.records.count(n) == 0 && expect.mayLack.count(n) == 0) {
	    Broken(where, "record " + Text(n) + " is missing (oldest " + Text(seen.oldest)
		    + ", next " + Text(seen.next) + ")");
	}
    }
    for (const auto &a : expect.acked) {
	if (a.first >= seen.oldest && a.first < seen.next && seen.records.count(a.first) == 0
		&& expect.mayLack.count(a.first) == 0) {
	    Broken(where, "acknowledged record " + Text(a.first) + " is missing");
	}
    }
    if (seen.records.size() + seen.damaged != seen.next - seen.oldest) {
	Broken(where, "records + damaged != next - oldest");
    }
    return seen;
}

/* Append one message; its number. */
std::uint64_t AppendOne(Log &log, const std::string &message, const std::string &where) {
    const mmaplog::Message m = {reinterpret_cast<const unsigned char *>(message.data()),
	    message.size()};
    std::uint64_t seq = 0;
    int error = 0;
    const Status status = log.Append(&m, 1, 1, seq, error);
    if (status != Status::Ok) {
	Broken(where, "append failed: status " + Text(static_cast<int>(status)));
    }
    return seq;
}

Status FenceNow(Log &log, std::uint64_t &destroyed, const std::function<int(std::uint64_t,
	std::uint64_t)> &sync) {
    int error = 0;
    bool slept = false;
    return log.Fence(destroyed, error, slept, [] { return false; }, sync);
}

/* A message of length bytes that says which it is. */
std::string Message(const std::string &tag, std::size_t length) {
    std::string m = tag + ":";
    while (m.size() < length) {
	m += static_cast<char>('a' + (m.size() * 7 + tag.size()) % 26);
    }
    m.resize(length);
    return m;
}

/*
 *----------------------------------------------------------------------
 * Crash points
 *----------------------------------------------------------------------
 */

constexpr std::size_t CRASH_FILE = 8192;	/* area: 4096 bytes */

/* A file of the log, mapped shared. */
struct Mapped {
    int fd = -1;
    unsigned char *base = nullptr;
    std::size_t size = 0;
    mmaplog::Geometry geometry;
    explicit Mapped(const std::string &path) {
	fd = ::open(path.c_str(), O_RDWR);
	struct stat st;
	if (fd < 0 || ::fstat(fd, &st) != 0) {
	    Broken(path, "cannot open");
	}
	size = static_cast<std::size_t>(st.st_size);
	void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
	    Broken(path, "cannot map");
	}
	base = static_cast<unsigned char *>(p);
	if (mmaplog::CheckHeader(base, size, geometry) != mmaplog::HeaderCheck::Ok) {
	    Broken(path, "header refused");
	}
    }
    ~Mapped() {
	::munmap(base, size);
	::close(fd);
    }
    int Sync(std::uint64_t from, std::uint64_t count) const {
	const std::uint64_t start = from & ~std::uint64_t{4095};
	return ::msync(base + start, from + count - start, MS_SYNC) == 0 ? 0 : errno;
    }
};

/* One append shape: how to set the log up, then what to do. */
struct Shape {
    const char *name;
    std::vector<std::size_t> setup;	/* message lengths appended first */
    std::size_t length;		/* the message the stopped append writes */
    bool damageOldest = false;	/* garble the oldest record's payload */
    bool fence = false;		/* the operation is the fence, after forged
				 * headers numbered next and above */
    std::size_t count = 1;	/* messages in the one append call (each
				 * length bytes), committed one by one */
};

std::vector<Shape> Shapes() {
    /* Record sizes: 32 + length rounded up to 8. The area is 4096. */
    return {
	{"small", {20, 30, 40}, 10},
	{"empty log", {}, 100},
	{"exact fit", {100, 100}, 4096 - 272 - 32},
	{"wrap", {1000, 1000, 1000, 868}, 200},
	{"wrap, 8 left", {1000, 1000, 1000, 960}, 50},
	{"wrap, 16 left", {1000, 1000, 1000, 952}, 50},
	{"wrap, 24 left", {1000, 1000, 1000, 944}, 50},
	{"maximum size", {20, 30}, 4064},
	{"drop one", {1000, 1000, 1000, 1000}, 500},
	{"drop several", {1000, 1000, 1000, 1000}, 2000},
	{"drop all, head at the end", {0, 4032}, 4064},
	{"drop all four, head at the end", {992, 992, 992, 992}, 4064},
	{"drop one, head at the end", {992, 992, 992, 992}, 10},
	{"damaged oldest", {1000, 1000, 1000, 1000}, 500, true},
	{"damaged oldest, drop all", {992, 992, 992, 992}, 4064, true},
	{"fence", {20, 30, 40}, 0, false, true},
	{"fence, wrapped", {1000, 1000, 1000, 1000, 200}, 0, false, true},
	{"three in one call, wrapping", {1000, 1000, 1000, 500}, 400, false, false, 3},
    };
}

/* Forge what a dead append and a lost history leave: a sound record
 * header numbered next at the head and one numbered next + 5 further on,
 * in the free space. */
void ForgeStale(Log &log, unsigned char *base, const mmaplog::Geometry &g) {
    State s;
    log.Snapshot(s);
    auto forge = [&](std::uint64_t pos, std::uint64_t seq) {
	unsigned char *h = base + g.areaOffset + pos;
	std::memset(h, 0, mmaplog::RECORD_HEADER + 8);
	mmaplog::Store32(h + mmaplog::R_MAGIC, mmaplog::RECORD_MAGIC);
	mmaplog::Store32(h + mmaplog::R_LENGTH, 8);
	mmaplog::Store64(h + mmaplog::R_SEQ, seq);
	std::memcpy(h + mmaplog::RECORD_HEADER, "stale!!!", 8);
	mmaplog::Store32(h + mmaplog::R_DATA_CHECK, mmaplog::Crc32c(0, "stale!!!", 8));
	mmaplog::Store32(h + mmaplog::R_HEAD_CHECK, mmaplog::Crc32c(0, h, mmaplog::R_HEAD_CHECK));
    };
    const std::uint64_t head = s.headPos % g.areaSize;
    const std::uint64_t free = (s.tailPos + g.areaSize - head) % g.areaSize;
    if (s.Count() == 0 || free >= 2 * 40 + 80) {
	forge(head, s.nextSeq);
	forge((head + 80) % g.areaSize, s.nextSeq + 5);
    }
}

int stopAt = 0;			/* the child's stop point */
int reached = 0;		/* stop points passed so far */
const Log *childLog = nullptr;
const Expect *childExpect = nullptr;
std::string childWhere;

void ChildCrashPoint() {
    if (++reached == stopAt) {
	/* A reader at this instant sees a sound log. */
	CheckLog(*childLog, *childExpect, childWhere + " (reader at the stop)");
	_exit(42);
    }
}

struct Counts {
    std::uint64_t shapes = 0, points = 0;
};

void RunShape(const Shape &shape, const std::string &path, Counts &counts) {
    const std::string name = std::string("shape \"") + shape.name + "\"";
    /* Set up the file, keep its bytes. */
    {
	std::vector<unsigned char> page(mmaplog::HEADER_SIZE);
	mmaplog::FormatHeader(page.data(), CRASH_FILE);
	const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ::ftruncate(fd, CRASH_FILE) != 0
		|| ::pwrite(fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size())) {
	    Broken(name, "cannot create the file");
	}
	::close(fd);
    }
    Expect expect;
    std::uint64_t damagedSeq = 0;
    {
	Mapped m(path);
	Log log(m.base, m.size, m.geometry);
	std::size_t i = 0;
	for (std::size_t length : shape.setup) {
	    const std::string text = Message("setup" + Text(i++), length);
	    expect.acked[AppendOne(log, text, name + " setup")] = text;
	}
	State s;
	log.Snapshot(s);
	for (auto it = expect.acked.begin(); it != expect.acked.end();) {
	    it = it->first < s.tailSeq ? expect.acked.erase(it) : std::next(it);
	}
	if (shape.damageOldest) {
	    damagedSeq = s.tailSeq;
	    m.base[m.geometry.areaOffset + s.tailPos + mmaplog::RECORD_HEADER] ^= 0x55;
	    expect.acked.erase(damagedSeq);
	    expect.mayLack.insert(damagedSeq);
	}
	if (shape.fence) {
	    ForgeStale(log, m.base, m.geometry);
	}
	CheckLog(log, expect, name + " after setup");
    }
    std::vector<unsigned char> bytes(CRASH_FILE);
    {
	const int fd = ::open(path.c_str(), O_RDONLY);
	if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
	    Broken(name, "cannot read the file");
	}
	::close(fd);
    }
    State before;
    {
	Mapped m(path);
	Log(m.base, m.size, m.geometry).Snapshot(before);
    }
    std::vector<std::string> messages;
    Expect during = expect;
    for (std::size_t i = 0; !shape.fence && i < shape.count; i++) {
	messages.push_back(Message("new " + Text(i) + " " + shape.name, shape.length));
	during.fresh[before.nextSeq + i] = messages.back();
    }
    counts.shapes++;
    for (int k = 1;; k++) {
	const std::string where = name + " stop " + Text(k);
	{
	    const int fd = ::open(path.c_str(), O_RDWR);
	    if (::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
		Broken(where, "cannot restore the file");
	    }
	    ::close(fd);
	}
	std::fflush(nullptr);
	const pid_t child = ::fork();
	if (child < 0) {
	    Broken(where, "fork failed");
	}
	if (child == 0) {
	    Mapped m(path);
	    Log log(m.base, m.size, m.geometry);
	    childLog = &log;
	    childExpect = &during;
	    childWhere = where;
	    stopAt = k;
	    mmaplog::crashPoint = ChildCrashPoint;
	    if (shape.fence) {
		std::uint64_t destroyed = 0;
		if (FenceNow(log, destroyed, [&](std::uint64_t from, std::uint64_t count) {
			return m.Sync(from, count); }) != Status::Ok) {
		    Broken(where, "fence failed");
		}
	    } else {
		std::vector<mmaplog::Message> batch;
		for (const std::string &m : messages) {
		    batch.push_back({reinterpret_cast<const unsigned char *>(m.data()), m.size()});
		}
		std::uint64_t last = 0;
		int error = 0;
		if (log.Append(batch.data(), batch.size(), 1, last, error) != Status::Ok
			|| last != before.nextSeq + batch.size() - 1) {
		    Broken(where, "append failed");
		}
	    }
	    mmaplog::crashPoint = nullptr;
	    CheckLog(log, during, where + " (completed)");
	    _exit(0);
	}
	int status = 0;
	::waitpid(child, &status, 0);
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 42)) {
	    Broken(where, "the child failed");
	}
	const bool stopped = WEXITSTATUS(status) == 42;
	/* The parent opens the file afresh, as the next process would. */
	Mapped m(path);
	Dump("crash", m.base, m.size);
	Log log(m.base, m.size, m.geometry);
	State after;
	if (log.Snapshot(after) != Status::Ok) {
	    Broken(where, "the committed state fails its checks");
	}
	if (after.nextSeq < before.nextSeq || after.nextSeq > before.nextSeq + shape.count) {
	    Broken(where, "next moved by more than the records appended");
	}
	if (shape.fence && after.generation != before.generation) {
	    Broken(where, "the fence committed a state");
	}
	CheckLog(log, during, where + " (after the crash)");
	/* A writable open fences; then the next append works. */
	std::uint64_t destroyed = 0;
	if (FenceNow(log, destroyed, [&](std::uint64_t from, std::uint64_t count) {
		return m.Sync(from, count); }) != Status::Ok) {
	    Broken(where, "fence after the crash failed");
	}
	const std::string another = Message("after " + where, 33);
	Expect later = during;
	const std::uint64_t seq = AppendOne(log, another, where + " next append");
	later.fresh[seq] = another;
	const Seen seen = CheckLog(log, later, where + " (after the next append)");
	if (seen.records.count(seq) == 0 || seen.next != seq + 1) {
	    Broken(where, "the next append is not the newest record");
	}
	if (!stopped) {
	    counts.points += k - 1;
	    std::printf("  %-34s %3d stop points\n", shape.name, k - 1);
	    break;
	}
    }
}

/*
 *----------------------------------------------------------------------
 * Power loss
 *----------------------------------------------------------------------
 */

constexpr std::size_t PAGE = 4096, SECTOR = 512;

struct Scenario {
    const char *name;
    std::size_t fileSize;
    std::size_t synced;		/* records appended before the sync */
    std::size_t lost;		/* appended after it */
    std::size_t fresh;		/* appended after the restart */
    std::size_t (*length)(int phase, std::size_t i);	/* phase 0, 1, 2 */
};

std::vector<Scenario> Scenarios() {
    return {
	{"same sizes", 8 * PAGE, 200, 20, 12,
	    [](int, std::size_t) -> std::size_t { return 100; }},
	{"long lost, short new", 8 * PAGE, 200, 20, 30,
	    [](int phase, std::size_t i) -> std::size_t {
		return phase == 0 ? 100 + i % 50 : phase == 1 ? 300 : 10; }},
	{"short lost, long new", 8 * PAGE, 150, 60, 10,
	    [](int phase, std::size_t i) -> std::size_t {
		return phase == 0 ? 200 : phase == 1 ? 20 + i % 9 : 500; }},
	{"lost laps over the synced", 8 * PAGE, 30, 120, 20,
	    [](int phase, std::size_t i) -> std::size_t {
		return phase == 0 ? 50 : phase == 1 ? 100 + i * 13 % 300 : 30; }},
	{"few synced, no wrap", 8 * PAGE, 10, 15, 40,
	    [](int phase, std::size_t i) -> std::size_t {
		return phase == 0 ? 300 : phase == 1 ? 40 + i % 3 : 8 + i % 5; }},
	{"large records", 6 * PAGE, 12, 6, 8,
	    [](int phase, std::size_t i) -> std::size_t {
		return phase == 0 ? 1500 + i * 100 : phase == 1 ? 3000 : 700 + i; }},
    };
}

/* A log in 8-byte aligned memory (a copy of a file). */
struct Memory {
    std::vector<std::uint64_t> words;
    explicit Memory(std::size_t size) : words(size / 8, 0) {}
    unsigned char *bytes() { return reinterpret_cast<unsigned char *>(words.data()); }
    std::size_t size() const { return words.size() * 8; }
};

struct PowerCounts {
    std::uint64_t mixes = 0, stateA = 0, stateB = 0, destroyed = 0, failures = 0;
};

std::uint64_t seed = 12345;
std::uint64_t Random() {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 33;
}

/* The sector masks of one scenario: bit s set takes sector s from B. */
std::vector<std::vector<bool>> Mixes(std::size_t size, bool full) {
    const std::size_t pages = size / PAGE, sectors = size / SECTOR, per = PAGE / SECTOR;
    std::vector<std::vector<bool>> masks;
    auto byPage = [&](std::uint64_t bits) {
	std::vector<bool> mask(sectors);
	for (std::size_t s = 0; s < sectors; s++) {
	    mask[s] = (bits >> (s / per)) & 1;
	}
	return mask;
    };
    /* Every subset of pages (the quick run: every third one). */
    for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << pages); bits++) {
	if (full || bits % 3 == 0) {
	    masks.push_back(byPage(bits));
	}
    }
    if (!full) {
	return masks;
    }
    /* By sector: prefixes, suffixes, single sectors and all but one. */
    for (std::size_t n = 0; n <= sectors; n++) {
	std::vector<bool> prefix(sectors), suffix(sectors), one(sectors), allBut(sectors, true);
	for (std::size_t s = 0; s < sectors; s++) {
	    prefix[s] = s < n;
	    suffix[s] = s >= n;
	}
	masks.push_back(prefix);
	masks.push_back(suffix);
	if (n < sectors) {
	    one[n] = true;
	    allBut[n] = false;
	    masks.push_back(one);
	    masks.push_back(allBut);
	}
    }
    /* Alternations with periods 1, 2, 3, 4 sectors, both phases. */
    for (std::size_t period = 1; period <= 4; period++) {
	for (int phase = 0; phase < 2; phase++) {
	    std::vector<bool> mask(sectors);
	    for (std::size_t s = 0; s < sectors; s++) {
		mask[s] = ((s / period) & 1) == static_cast<std::size_t>(phase);
	    }
	    masks.push_back(mask);
	}
    }
    /* One torn page: its first t sectors from B, the rest from A, the
     * other pages all from A or all from B. */
    for (std::size_t p = 0; p < pages; p++) {
	for (std::size_t t = 1; t < per; t++) {
	    for (int others = 0; others < 2; others++) {
		std::vector<bool> mask(sectors, others == 1);
		for (std::size_t s = 0; s < per; s++) {
		    mask[p * per + s] = s < t;
		}
		masks.push_back(mask);
	    }
	}
    }
    /* Seeded random sector subsets. */
    for (int i = 0; i < 200; i++) {
	std::vector<bool> mask(sectors);
	for (std::size_t s = 0; s < sectors; s++) {
	    mask[s] = Random() & 1;
	}
	masks.push_back(mask);
    }
    return masks;
}

std::map<std::uint64_t, std::string> Contents(const Log &log, const std::string &where) {
    return ReadLog(log, where).records;
}

/* A copy of a log as `sync` left it (a), a later one (b), and what each reads. */
struct Copies {
    Memory a, b;
    State sa, sb;
    std::map<std::uint64_t, std::string> contentA, contentB;
    std::map<std::uint64_t, std::string> history;	/* more records that
				 * may be there (exact), numbered below a's next */
    Copies(const Memory &first, const Memory &second, const mmaplog::Geometry &g,
	    const std::string &name)
	: a(first), b(second) {
	Memory copy = a;
	Log(copy.bytes(), copy.size(), g).Snapshot(sa);
	contentA = Contents(Log(copy.bytes(), copy.size(), g), name + " copy A");
	copy = b;
	Log(copy.bytes(), copy.size(), g).Snapshot(sb);
	contentB = Contents(Log(copy.bytes(), copy.size(), g), name + " copy B");
    }
};

/* A file mixed from the two copies: sector s from b where mask[s]. */
Memory Mix(const Copies &c, const std::vector<bool> &mask) {
    Memory mix(c.a.size());
    for (std::size_t s = 0; s < mask.size(); s++) {
	std::memcpy(mix.bytes() + s * SECTOR, (mask[s] ? c.b : c.a).words.data()
		+ s * SECTOR / 8, SECTOR);
    }
    return mix;
}

/*
 * One mix, as the restarted system meets it: open, check, fence (unless
 * not), append, reopen, check, append again. Broken() at the first rule
 * broken.
 */
void CheckMix(Memory &mix, const Copies &c, const Scenario &sc, const mmaplog::Geometry &g,
	bool fence, const std::string &where, PowerCounts &counts) {
    Log log(mix.bytes(), mix.size(), g);
    State h;
    if (log.Snapshot(h) != Status::Ok) {
	Broken(where, "the committed state fails its checks");
    }
    const bool fromB = h.generation == c.sb.generation;
    if (!fromB && h.generation != c.sa.generation) {
	Broken(where, "a state from neither copy");
    }
    (fromB ? counts.stateB : counts.stateA)++;
    /*
     * What must be there: the synced records (those a reads sound) not
     * dropped by b's appends. What may be there: the synced ones
     * (exact), b's own only under b's state (exact). Damage only in what
     * b's appends dropped, in b's own records, and where a was damaged.
     */
    Expect expect;
    for (std::uint64_t n = c.sa.tailSeq; n < c.sa.nextSeq; n++) {
	if (c.contentA.count(n) == 0) {
	    expect.mayLack.insert(n);
	}
    }
    for (const auto &r : c.contentA) {
	expect.acked.insert(r);
	if (r.first < c.sb.tailSeq) {
	    expect.mayLack.insert(r.first);
	}
    }
    for (const auto &r : c.history) {
	if (r.first < c.sa.nextSeq && expect.acked.insert(r).second) {
	    expect.mayLack.insert(r.first);
	}
    }
    if (fromB) {
	for (std::uint64_t n = c.sa.nextSeq; n < c.sb.nextSeq; n++) {
	    expect.mayLack.insert(n);
	}
	for (const auto &r : c.contentB) {
	    if (r.first >= c.sa.nextSeq) {
		expect.acked.insert(r);
	    }
	}
    }
    CheckLog(log, expect, where + " (as found)");
    if (fence) {
	std::uint64_t destroyed = 0;
	if (FenceNow(log, destroyed, [](std::uint64_t, std::uint64_t) { return 0; })
		!= Status::Ok) {
	    Broken(where, "fence failed");
	}
	counts.destroyed += destroyed;
    }
    for (std::size_t i = 0; i < sc.fresh; i++) {
	const std::string text = Message("new " + Text(i) + " of " + where, sc.length(2, i));
	expect.fresh[AppendOne(log, text, where)] = text;
    }
    /* Reopen: a new object on the same bytes, fenced as a writable open. */
    Log again(mix.bytes(), mix.size(), g);
    if (fence) {
	std::uint64_t destroyed = 0;
	FenceNow(again, destroyed, [](std::uint64_t, std::uint64_t) { return 0; });
    }
    const Seen seen = CheckLog(again, expect, where + " (reopened)");
    for (const auto &f : expect.fresh) {
	if (f.first >= seen.oldest && seen.records.count(f.first) == 0) {
	    Broken(where, "new record " + Text(f.first) + " is missing");
	}
    }
    const std::string last = Message("last of " + where, 21);
    const std::uint64_t seq = AppendOne(again, last, where + " last append");
    expect.fresh[seq] = last;
    const Seen final = CheckLog(again, expect, where + " (last append)");
    if (final.records.count(seq) == 0) {
	Broken(where, "the last append is missing");
    }
}

/*
 * Every mix of the copies. Without the fence (or with one that is not
 * durable) rules are expected to break: each mix is then checked in a
 * child, and the broken ones counted.
 */
std::size_t RunMixes(const Copies &c, const Scenario &sc, const mmaplog::Geometry &g,
	bool full, bool fence, bool counting, const std::string &name, PowerCounts &counts) {
    const auto masks = Mixes(c.a.size(), full);
    std::size_t failures = 0;
    for (std::size_t mi = 0; mi < masks.size(); mi++) {
	const std::string where = name + " mix " + Text(mi);
	Memory mix = Mix(c, masks[mi]);
	counts.mixes++;
	Dump("power", mix.bytes(), mix.size());
	if (!counting) {
	    CheckMix(mix, c, sc, g, fence, where, counts);
	    continue;
	}
	std::fflush(nullptr);
	const pid_t child = ::fork();
	if (child == 0) {
	    CheckMix(mix, c, sc, g, fence, where, counts);
	    _exit(0);
	}
	int status = 0;
	::waitpid(child, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
	    failures++;
	}
    }
    return failures;
}

/*
 * A scenario: its first power loss, then, from a few of its mixes, a
 * second one: the restarted writer fences (its fence durable, as msync
 * makes it: the copy is taken after it), appends more unsynced, and the
 * power goes again. With nofence, the first loss runs without the fence
 * and the second with a fence that was not durable (the copy taken
 * before it).
 */
void RunScenario(const Scenario &sc, bool full, bool fence, PowerCounts &counts) {
    const std::string name = std::string("scenario \"") + sc.name + "\"";
    Memory file(sc.fileSize);
    mmaplog::FormatHeader(file.bytes(), sc.fileSize);
    mmaplog::Geometry g;
    mmaplog::CheckHeader(file.bytes(), sc.fileSize, g);
    Log writer(file.bytes(), file.size(), g);
    for (std::size_t i = 0; i < sc.synced; i++) {
	AppendOne(writer, Message("synced " + Text(i), sc.length(0, i)), name);
    }
    const Memory a = file;
    for (std::size_t i = 0; i < sc.lost; i++) {
	AppendOne(writer, Message("lost " + Text(i), sc.length(1, i)), name);
    }
    const Copies first(a, file, g, name);
    if (first.contentA.size() != first.sa.Count() || first.contentB.size() != first.sb.Count()) {
	Broken(name, "the copies are not sound");
    }
    std::size_t failures = RunMixes(first, sc, g, full, fence, !fence, name, counts);
    std::size_t mixes = Mixes(sc.fileSize, full).size();
    /* The second loss, after the mixes whose header is a's and whose area
     * is all b's, the other way round, and by alternate pages. */
    const std::size_t pages = sc.fileSize / PAGE;
    std::vector<std::uint64_t> seconds = {(std::uint64_t{1} << pages) - 2};
    if (full) {
	seconds.push_back(1);
	seconds.push_back(0x55555555 & ((std::uint64_t{1} << pages) - 1));
    }
    std::size_t secondFailures = 0;
    for (std::uint64_t bits : seconds) {
	const std::string where = name + " second loss after pages " + Text(bits);
	std::vector<bool> mask(sc.fileSize / SECTOR);
	for (std::size_t s = 0; s < mask.size(); s++) {
	    mask[s] = (bits >> (s * SECTOR / PAGE)) & 1;
	}
	Memory disk = Mix(first, mask);
	const Memory beforeFence = disk;
	Log restarted(disk.bytes(), disk.size(), g);
	std::uint64_t destroyed = 0;
	FenceNow(restarted, destroyed, [](std::uint64_t, std::uint64_t) { return 0; });
	const Memory synced = fence ? disk : beforeFence;
	for (std::size_t i = 0; i < sc.lost; i++) {
	    AppendOne(restarted, Message("lost again " + Text(i), sc.length(1, i + 7)), where);
	}
	Copies second(synced, disk, g, where);
	/* Records of the history before the first loss that the state on
	 * its disk counts: a mix may complete one that the disk had torn. */
	State f;
	Log(disk.bytes(), disk.size(), g).Snapshot(f);
	for (const auto &r : first.contentA) {
	    second.history.insert(r);
	}
	if (f.generation != first.sa.generation) {
	    for (const auto &r : first.contentB) {
		second.history.insert(r);
	    }
	}
	secondFailures += RunMixes(second, sc, g, full, fence, !fence, where, counts);
	mixes += Mixes(sc.fileSize, full).size();
    }
    counts.failures += failures + secondFailures;
    std::printf("  %-28s %5zu mixes (A: state %llu..%llu, B: %llu..%llu)%s\n", sc.name,
	    mixes, static_cast<unsigned long long>(first.sa.tailSeq),
	    static_cast<unsigned long long>(first.sa.nextSeq),
	    static_cast<unsigned long long>(first.sb.tailSeq),
	    static_cast<unsigned long long>(first.sb.nextSeq),
	    fence ? "" : (", broken: " + Text(failures) + " without the fence, "
		    + Text(secondFailures) + " after a second loss with a fence not"
		    " made durable").c_str());
}

} // namespace

int main(int argc, char **argv) {
    for (int i = 1; i + 2 < argc; i++) {
	if (std::strcmp(argv[i], "--dump") == 0) {
	    dumpDir = argv[i + 1];
	    dumpEvery = std::strtoull(argv[i + 2], nullptr, 10);
	    if (dumpEvery == 0) {
		std::fprintf(stderr, "crash_log: --dump wants a count of 1 or more\n");
		return 2;
	    }
	    for (int j = i; j + 3 <= argc; j++) {
		argv[j] = j + 3 < argc ? argv[j + 3] : nullptr;
	    }
	    argc -= 3;
	    break;
	}
    }
    const std::string mode = argc > 1 ? argv[1] : "";
    const bool full = argc > 2 && std::strcmp(argv[2], "full") == 0;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (mode == "crash") {
	const char *tmp = std::getenv("TMPDIR");
	const std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/crash_log."
		+ Text(static_cast<std::uint64_t>(::getpid())) + ".log";
	Counts counts;
	std::printf("crash points (%s):\n", full ? "full" : "quick");
	for (const Shape &shape : Shapes()) {
	    RunShape(shape, path, counts);
	}
	::unlink(path.c_str());
	std::printf("crash points: %llu shapes, %llu stop points, all sound\n",
		static_cast<unsigned long long>(counts.shapes),
		static_cast<unsigned long long>(counts.points));
	return 0;
    }
    if (mode == "power") {
	const bool fence = !(argc > 3 && std::strcmp(argv[3], "nofence") == 0);
	PowerCounts counts;
	std::printf("power loss (%s%s):\n", full ? "full" : "quick", fence ? "" : ", no fence");
	const auto scenarios = Scenarios();
	for (const Scenario &scenario : scenarios) {
	    RunScenario(scenario, full, fence, counts);
	}
	std::printf("power loss: %llu mixes (state from the synced copy: %llu, from the later"
		" one: %llu), %llu stale headers fenced, %s\n",
		static_cast<unsigned long long>(counts.mixes),
		static_cast<unsigned long long>(counts.stateA),
		static_cast<unsigned long long>(counts.stateB),
		static_cast<unsigned long long>(counts.destroyed),
		fence ? "all sound" : (Text(counts.failures) + " broken").c_str());
	return 0;
    }
    std::fprintf(stderr, "usage: crash_log crash|power ?quick|full? ?nofence? ?--dump DIR N?\n");
    return 2;
}

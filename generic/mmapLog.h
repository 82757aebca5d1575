/*
 * mmapLog.h --
 *
 *	The format and algorithms of [mmap::log]: a cyclic log of records in
 *	one file of fixed size, shared by any number of processes that map
 *	it. Nothing here knows about Tcl: the code works on the bytes of the
 *	file, mapped (or, for the fuzzer, in a plain buffer), and reports
 *	outcomes as enum values for generic/mmap.cpp to turn into Tcl errors.
 *	The format itself is documented in doc/logformat.md.
 *
 *	In short: a 4096-byte header holds the geometry, a robust lock word
 *	taken by appenders, and the committed state (next sequence number,
 *	oldest record, where the next record goes) in two checksummed slots
 *	selected by a generation counter. Records follow, each with a
 *	header checksum and a payload checksum. An append fills space that no
 *	committed state counts as live and only then publishes a new state,
 *	so a writer killed at any instant leaves the previous state valid.
 *	Readers take no lock: they copy, verify every record, and drop those
 *	that the committed state says were overwritten while they read.
 *
 *	Every access to the file's bytes goes through the SIGBUS guard of
 *	mmapUnix.h, so a file truncated under the mapping gives an error.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_LOG_H
#define MMAP_LOG_H

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "mmapShared.h"
#include "mmapUnix.h"

namespace mmaplog {

/*
 * The crash test (tests/crash/crash_log.cpp) builds this file with
 * -DMMAPLOG_CRASHTEST and sets crashPoint: MMAPLOG_CRASH_POINT() follows
 * every store an append, a drop commit or the fence makes into the
 * mapping, so that the test can stop the process after any of them.
 * Elsewhere it is nothing.
 */
#ifdef MMAPLOG_CRASHTEST
inline void (*crashPoint)() = nullptr;
#define MMAPLOG_CRASH_POINT() (::mmaplog::crashPoint ? ::mmaplog::crashPoint() : void())
#else
#define MMAPLOG_CRASH_POINT() ((void)0)
#endif

/*
 *----------------------------------------------------------------------
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and
 * final xor 0xFFFFFFFF: crc32c("123456789") is 0xE3069283), table-driven
 * eight bytes at a time ("slicing by 8").
 *----------------------------------------------------------------------
 */

namespace detail {

struct CrcTables {
    std::uint32_t t[8][256];
    constexpr CrcTables() : t() {
	for (std::uint32_t i = 0; i < 256; i++) {
	    std::uint32_t c = i;
	    for (int k = 0; k < 8; k++) {
		c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	    }
	    t[0][i] = c;
	}
	for (std::uint32_t i = 0; i < 256; i++) {
	    for (int s = 1; s < 8; s++) {
		t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
	    }
	}
    }
};
inline constexpr CrcTables crcTables{};

} // namespace detail

/* Continue a CRC32C over more bytes: pass 0 to start. Portable form. */
inline std::uint32_t Crc32cTable(std::uint32_t crc, const void *data, std::size_t count) noexcept {
    const auto &t = detail::crcTables.t;
    const auto *p = static_cast<const unsigned char *>(data);
    crc = ~crc;
    while (count >= 8) {
	const std::uint32_t lo = crc ^ (p[0] | p[1] << 8 | p[2] << 16
		| static_cast<std::uint32_t>(p[3]) << 24);
	crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF]
		^ t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
	p += 8;
	count -= 8;
    }
    while (count-- > 0) {
	crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same with SSE 4.2's crc32 instruction, several times faster. */
__attribute__((target("sse4.2")))
inline std::uint32_t Crc32cSse42(std::uint32_t crc, const void *data, std::size_t count) noexcept {
    const auto *p = static_cast<const unsigned char *>(data);
    std::uint64_t c = ~crc;
    for (; count >= 8; p += 8, count -= 8) {
	std::uint64_t word;
	std::memcpy(&word, p, 8);
	c = __builtin_ia32_crc32di(c, word);
    }
    std::uint32_t c32 = static_cast<std::uint32_t>(c);
    while (count-- > 0) {
	c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return ~c32;
}

/* Inlined where it is used: a read checks three CRCs a record. */
__attribute__((always_inline))
inline std::uint32_t Crc32c(std::uint32_t crc, const void *data, std::size_t count) noexcept {
    static const bool hardware = __builtin_cpu_supports("sse4.2");
    return hardware ? Crc32cSse42(crc, data, count) : Crc32cTable(crc, data, count);
}
#else
inline std::uint32_t Crc32c(std::uint32_t crc, const void *data, std::size_t count) noexcept {
    return Crc32cTable(crc, data, count);
}
#endif

/*
 *----------------------------------------------------------------------
 * Byte order. The format is little-endian throughout; on a big-endian
 * host every field and every shared word of the state is swapped on its
 * way in and out. (The lock word, the wake counter and the waiters count
 * only mean something while processes have the log open, all on one
 * host: they stay in its order.)
 *----------------------------------------------------------------------
 */

constexpr bool BIG_ENDIAN_HOST = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;

inline std::uint32_t Little32(std::uint32_t v) noexcept {
    return BIG_ENDIAN_HOST ? __builtin_bswap32(v) : v;
}
inline std::uint64_t Little64(std::uint64_t v) noexcept {
    return BIG_ENDIAN_HOST ? __builtin_bswap64(v) : v;
}
inline std::uint32_t Load32(const unsigned char *p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return Little32(v);
}
inline std::uint64_t Load64(const unsigned char *p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return Little64(v);
}
inline void Store32(unsigned char *p, std::uint32_t v) noexcept {
    v = Little32(v);
    std::memcpy(p, &v, sizeof v);
}
inline void Store64(unsigned char *p, std::uint64_t v) noexcept {
    v = Little64(v);
    std::memcpy(p, &v, sizeof v);
}

/*
 *----------------------------------------------------------------------
 * The layout (doc/logformat.md has the same as a table).
 *----------------------------------------------------------------------
 */

constexpr unsigned char MAGIC[8] = {'m', 'm', 'a', 'p', '-', 'l', 'o', 'g'};
constexpr std::uint32_t VERSION = 2;
/*
 * Version 1 had the same layout, but its lock word named the holder by
 * process and thread ids: it is read as it is, and upgraded by the first
 * writable open (see doc/logformat.md).
 */
constexpr std::uint32_t OLDEST_VERSION = 1;
constexpr std::uint64_t HEADER_SIZE = 4096;
/* The smallest file: the header and one page of records. */
constexpr std::uint64_t MIN_FILE_SIZE = HEADER_SIZE + 4096;

/* Header offsets. */
constexpr std::size_t H_MAGIC = 0;		/* 8 bytes */
constexpr std::size_t H_VERSION = 8;		/* u32 */
constexpr std::size_t H_HEADER_SIZE = 12;	/* u32 */
constexpr std::size_t H_FILE_SIZE = 16;		/* u64 */
constexpr std::size_t H_AREA_OFFSET = 24;	/* u64 */
constexpr std::size_t H_AREA_SIZE = 32;		/* u64 */
constexpr std::size_t H_RESERVED = 40;		/* u32, 0 */
constexpr std::size_t H_CHECK = 44;		/* u32 crc32c of bytes 0..43 */
constexpr std::size_t H_FIXED = 48;		/* bytes the check covers + it */
/*
 * What an append writes shares as few cache lines as it can, since each
 * line an appender writes moves to the next appender's core: the lock
 * word, the generation and slot 0 share one line, slot 1 has the next;
 * the wake words, which appenders only read unless someone waits, have
 * a line of their own.
 */
constexpr std::size_t H_LOCK = 64;		/* u64 append lock (opaque) */
constexpr std::size_t H_GENERATION = 72;	/* u64 committed generation */
constexpr std::size_t H_SLOTS = 80;		/* two state slots */
constexpr std::size_t SLOT_SIZE = 48;
constexpr std::size_t H_WAKE = 192;		/* u32 bumped by appends seen waited for */
constexpr std::size_t H_WAITERS = 196;		/* u32 processes in [wait] */

/* Slot fields (u64 each), from the slot's start. */
enum SlotField { S_GENERATION, S_NEXT_SEQ, S_TAIL_SEQ, S_HEAD_POS, S_TAIL_POS, S_CHECK,
    SLOT_FIELDS };
static_assert(SLOT_FIELDS * 8 <= SLOT_SIZE && H_SLOTS + 2 * SLOT_SIZE <= H_WAKE);

/* Records, 8-byte aligned in the area; offsets from the record's start. */
constexpr std::uint32_t RECORD_MAGIC = 0x43455252;	/* "RREC" */
constexpr std::uint32_t PAD_MAGIC = 0x44415052;		/* "RPAD": wrap to 0 */
constexpr std::size_t R_MAGIC = 0;		/* u32 */
constexpr std::size_t R_LENGTH = 4;		/* u32 payload bytes */
constexpr std::size_t R_SEQ = 8;		/* u64 */
constexpr std::size_t R_TIME = 16;		/* i64 µs since the epoch */
constexpr std::size_t R_DATA_CHECK = 24;	/* u32 crc32c of the payload */
constexpr std::size_t R_HEAD_CHECK = 28;	/* u32 crc32c of bytes 0..27 */
constexpr std::size_t RECORD_HEADER = 32;	/* then the payload, zero
						 * padded to a multiple of 8 */

inline std::uint64_t RecordSize(std::uint64_t length) noexcept {
    return RECORD_HEADER + ((length + 7) & ~std::uint64_t{7});
}

/* What the fixed header says about the file. */
struct Geometry {
    std::uint64_t fileSize = 0;
    std::uint64_t areaOffset = 0;
    std::uint64_t areaSize = 0;
};

enum class HeaderCheck { Ok, NotLog, Version, Damaged, SizeMismatch };

/*
 * Fill page (HEADER_SIZE bytes) with the header of a new, empty log of
 * fileSize bytes (at least MIN_FILE_SIZE).
 */
inline void FormatHeader(unsigned char *page, std::uint64_t fileSize) noexcept {
    std::memset(page, 0, HEADER_SIZE);
    std::memcpy(page + H_MAGIC, MAGIC, sizeof MAGIC);
    Store32(page + H_VERSION, VERSION);
    Store32(page + H_HEADER_SIZE, HEADER_SIZE);
    Store64(page + H_FILE_SIZE, fileSize);
    Store64(page + H_AREA_OFFSET, HEADER_SIZE);
    Store64(page + H_AREA_SIZE, (fileSize - HEADER_SIZE) & ~std::uint64_t{7});
    Store32(page + H_CHECK, Crc32c(0, page, H_CHECK));
    /* Generation 0 lives in slot 0: sequence numbers start at 1. */
    unsigned char *slot = page + H_SLOTS;
    Store64(slot + 8 * S_NEXT_SEQ, 1);
    Store64(slot + 8 * S_TAIL_SEQ, 1);
    Store64(slot + 8 * S_CHECK, Crc32c(0, slot, 8 * S_CHECK));
}

/*
 * Check the fixed part of a header (H_FIXED bytes) against the size of
 * the file it came from. NotLog: no magic. Version: a format we do not
 * know. Damaged: the checksum or the geometry is wrong. SizeMismatch:
 * a sound header whose file size is not the file's.
 */
inline HeaderCheck CheckHeader(const unsigned char *fixed, std::uint64_t actualSize,
	Geometry &geometry) noexcept {
    if (std::memcmp(fixed + H_MAGIC, MAGIC, sizeof MAGIC) != 0) {
	return HeaderCheck::NotLog;
    }
    if (Crc32c(0, fixed, H_CHECK) != Load32(fixed + H_CHECK)) {
	return HeaderCheck::Damaged;
    }
    if (Load32(fixed + H_VERSION) < OLDEST_VERSION || Load32(fixed + H_VERSION) > VERSION) {
	return HeaderCheck::Version;
    }
    geometry.fileSize = Load64(fixed + H_FILE_SIZE);
    geometry.areaOffset = Load64(fixed + H_AREA_OFFSET);
    geometry.areaSize = Load64(fixed + H_AREA_SIZE);
    if (Load32(fixed + H_HEADER_SIZE) != HEADER_SIZE || geometry.areaOffset != HEADER_SIZE
	    || geometry.fileSize < MIN_FILE_SIZE
	    || geometry.areaSize != ((geometry.fileSize - HEADER_SIZE) & ~std::uint64_t{7})
	    || Load32(fixed + H_RESERVED) != 0) {
	return HeaderCheck::Damaged;
    }
    return geometry.fileSize == actualSize ? HeaderCheck::Ok : HeaderCheck::SizeMismatch;
}

/* Make a fixed header CheckHeader accepted one of this VERSION. */
inline void UpgradeHeader(unsigned char *fixed) noexcept {
    Store32(fixed + H_VERSION, VERSION);
    Store32(fixed + H_CHECK, Crc32c(0, fixed, H_CHECK));
}

/* The committed state: which records are kept and where. */
struct State {
    std::uint64_t generation = 0;
    std::uint64_t nextSeq = 1;	/* the number the next append gets */
    std::uint64_t tailSeq = 1;	/* the oldest kept; == nextSeq: none */
    std::uint64_t headPos = 0;	/* area offset of the next record */
    std::uint64_t tailPos = 0;	/* area offset of the oldest record */

    std::uint64_t Count() const noexcept { return nextSeq - tailSeq; }
};

/*
 * Make state empty: no record kept, the tail at the head. The head may
 * be the area size (the last record ended exactly at the area's end),
 * but a tail is always an offset inside the area, so an empty state's
 * tail is its head modulo the area size: every state a writer commits
 * passes Plausible, even one that dropped every record to make room.
 */
inline void MakeEmpty(State &state, std::uint64_t areaSize) noexcept {
    state.tailSeq = state.nextSeq;
    state.tailPos = state.headPos % areaSize;
}

enum class Status {
    Ok,
    Stopped,	/* the reader's visitor asked to stop */
    Fault,	/* a page of the file is gone (the file shrank) */
    Garbled,	/* the committed state fails its checks */
    Lock,	/* the append lock could not be taken (errno in lockError) */
    Sync,	/* the fence could not be made durable (errno in error) */
    Interrupted,	/* the caller's interrupted() ended a sleep for the lock */
    TooLarge,	/* a message that cannot fit in the area */
    TooLong,	/* a record to read is longer than the reader takes */
    NoMemory,
};

/* A message to append: bytes, length. */
struct Message {
    const unsigned char *bytes;
    std::size_t length;
};

/* Read options: from a sequence number, at most count records. */
struct ReadRequest {
    std::uint64_t from = 0;
    std::uint64_t count = UINT64_MAX;
    std::uint64_t last = UINT64_MAX;	/* only the newest last records */
    std::uint64_t longest = UINT64_MAX;	/* a record to visit that is
					 * longer ends the read: TooLong */
    std::size_t ahead = SIZE_MAX;	/* at most this many records are
					 * copied before they are visited:
					 * a visitor that may change the log
					 * (a script) wants 1, so that each
					 * record is copied, and found still
					 * kept, after the visits before it */
};

struct ReadResult {
    std::uint64_t damaged = 0;	/* records in the range read that failed
				 * their checks (not counting those the
				 * writers overwrote while we read) */
    State start;		/* the committed state whose records the
				 * read walked (from start.tailSeq up to
				 * start.nextSeq) */
    State state;		/* the committed state after the read: a
				 * record visited with a number below
				 * state.tailSeq was overwritten while it
				 * was read, and the caller must drop it */
    std::uint64_t longSeq = 0;	/* TooLong: the record's number */
    std::uint64_t longLength = 0;	/* and its length */
};

/* Holds the append lock for one append (defined below). */
class AppendLock;

/*
 * A log in the bytes [base, base + size) of a mapped file whose header
 * CheckHeader accepted. It owns nothing. The base must be 8-byte aligned
 * (a mapping is page aligned).
 */
class Log {
public:
    Log(unsigned char *base, std::size_t size, const Geometry &geometry) noexcept
	: base_(base), size_(size), areaOffset_(geometry.areaOffset),
	  area_(geometry.areaSize) {}

    std::uint64_t AreaSize() const noexcept { return area_; }
    /* The largest message an append accepts: one record fills the area. */
    std::uint64_t MaxMessage() const noexcept {
	const std::uint64_t room = (area_ - RECORD_HEADER) & ~std::uint64_t{7};
	return room < UINT32_MAX ? room : UINT32_MAX;
    }

    /* The committed state, consistent, checked against the geometry. */
    Status Snapshot(State &state) const noexcept;

    /*
     * Append the messages (each one record, committed one by one) under
     * the append lock, stamping them with timeMicros. lastSeq is the
     * number given to the last one. A message larger than MaxMessage()
     * makes the whole call fail before anything is written. A caller
     * sleeping for the lock while a live holder keeps it (one stopped, or
     * forged into a hostile file's lock word) is asked interrupted()
     * each time a sleep ends without it (see mmapunix::LockWord): true
     * returns Status::Interrupted, nothing written; call again with the
     * same slept (false at first) to go on waiting.
     */
    template <typename Interrupted>
    Status Append(const Message *messages, std::size_t count, std::int64_t timeMicros,
	    std::uint64_t &lastSeq, int &lockError, bool &slept,
	    Interrupted &&interrupted) noexcept;
    /* The same for a caller that nothing interrupts. */
    Status Append(const Message *messages, std::size_t count, std::int64_t timeMicros,
	    std::uint64_t &lastSeq, int &lockError) noexcept {
	bool slept = false;
	return Append(messages, count, timeMicros, lastSeq, lockError, slept,
		[] { return false; });
    }

    /*
     * The fence, for a process that opens the log writable (see
     * doc/logformat.md, "Power loss"): under the append lock, destroy
     * every record header in the area that passes its checks and is
     * numbered at or above the committed next, by zeroing it,
     * then make those stores durable with sync(from, count) (file
     * offsets; returns 0 or an errno value) before the lock is released.
     * Such a header is a dead append's uncommitted record or a record of
     * a history a power loss took back (its header pages lost, its area
     * pages not); left in place, the damage resync would accept it once
     * next grows past its number. The walk goes one lap from the tail:
     * along the committed records as a reader walks them, whose bytes it
     * leaves alone (a payload may hold bytes that look like a header),
     * and over every other byte (free space, damaged stretches, the end
     * of the area after a wrap) in 8-byte steps. destroyed: how many.
     * Lock outcomes as for Append; Status::Sync with error set when the
     * sync failed (the headers are destroyed in memory all the same).
     */
    template <typename Interrupted, typename Sync>
    Status Fence(std::uint64_t &destroyed, int &error, bool &slept,
	    Interrupted &&interrupted, Sync &&sync) noexcept;
    /*
     * Have this object's first append run the fence, inside its lock,
     * before it writes anything (syncing with sync(context, from,
     * count)), so that opening a log never waits for the lock. The one
     * place a writable open asks for it: LogOpen (mmapLogCmds.h).
     */
    using FenceSync = int (*)(void *context, std::uint64_t from, std::uint64_t count);
    void FenceBeforeAppending(FenceSync sync, void *context) noexcept {
	fenceSync_ = sync;
	fenceContext_ = context;
    }
    /* Whether the fence asked for there has not run yet. */
    bool FencePending() const noexcept { return fenceSync_ != nullptr; }

    /*
     * Records oldest first, verified, as asked (see ReadRequest): each is
     * handed to visit(seq, time, bytes, length), which returns false to
     * stop the read (Status::Stopped). The bytes are a copy, valid during
     * the call, and whole: a record is handed over only if the committed
     * state read after its copy still keeps it (writers publish a state
     * that drops a record before they write over its bytes), so visit
     * may act on it at once. Records writers drop after that are in
     * ReadResult, for a caller that collects them to drop afterwards.
     */
    template <typename Visit>
    Status Read(const ReadRequest &request, ReadResult &result, Visit &&visit) const;

    /*
     * Return when a record numbered seq or later exists (arrived) or after
     * timeoutMs (negative: no limit). error: 0 or an errno value. The
     * waiter counts itself in the header at wakeHeader, a writable
     * mapping of this file's header; with none (a read-only file) it
     * cannot, and looks again every POLL_MS instead.
     */
    static constexpr long POLL_MS = 50;
    Status Wait(std::uint64_t seq, long timeoutMs, unsigned char *wakeHeader,
	    bool &arrived, int &error) noexcept;

    /*
     * The process's lock file for this log's file (see mmapOwner.h): the
     * append lock proves its holders alive with it, and waiters announce
     * themselves through it. Until set, the log is this process's alone
     * (a buffer, as for the fuzzer).
     */
    void UseLockFile(mmapunix::LockFile &file) noexcept { lockFile_ = &file; }
    /*
     * Set the waiters count to 0 when it only counts dead waiters (see
     * WakeWaiters); a writable opener calls it. One system call.
     */
    void ForgetDeadWaiters() noexcept;

private:
    /* A guarded copy out of the file: false on a fault. */
    bool Get(std::uint64_t at, void *dst, std::size_t count) const noexcept {
	return mmapunix::GuardedCopy(dst, base_ + at, count, base_, base_ + size_) == nullptr;
    }
    template <typename T> std::atomic<T> &Word(std::size_t at,
	    unsigned char *header = nullptr) const noexcept {
	return *reinterpret_cast<std::atomic<T> *>((header ? header : base_) + at);
    }

    /* Touch the header words (of header, default ours) inside the guard. */
    template <typename F> bool Guarded(F &&body, unsigned char *header = nullptr) const noexcept {
	unsigned char *low = header ? header : base_;
	return mmapunix::GuardedCall(body, low, low + HEADER_SIZE) == nullptr;
    }

    void Publish(State &state) const noexcept;
    /* Take the append lock for an append or the fence: Ok once held. */
    template <typename Interrupted>
    Status TakeLock(AppendLock &lock, int &error, bool &slept,
	    Interrupted &&interrupted) noexcept;
    /* The fence's walk and sync, the append lock held. */
    template <typename Sync>
    Status FenceHeld(const State &state, std::uint64_t &destroyed, int &error,
	    Sync &&sync) noexcept;

    /* known, the last committed state a reader saw, read again if the
     * generation has moved since; read after the copies it vouches for.
     * The second form takes a generation already read (inside a guard,
     * with GenerationAfterCopies). */
    Status Refresh(State &known) const noexcept;
    Status Refresh(State &known, std::uint64_t generation) const noexcept {
	return generation == known.generation ? Status::Ok : Snapshot(known);
    }
    /* The committed generation, loaded after the copies before it; the
     * caller guards the access. */
    std::uint64_t GenerationAfterCopies() const noexcept {
	std::atomic_thread_fence(std::memory_order_acquire);
	return Little64(Word<std::uint64_t>(H_GENERATION).load(std::memory_order_acquire));
    }

    /*
     * Read's common case, many records under one guard. The walk's
     * place: the record expected next, its offset, the bytes walked, the
     * records still wanted.
     */
    struct Walk {
	std::uint64_t seq;
	std::uint64_t pos;
	std::uint64_t walked;
	std::uint64_t wanted;
    };
    /* A record copied into a batch, its payload at bytes + at. */
    struct Copied {
	std::uint64_t seq;
	std::int64_t time;
	std::uint32_t at;
	std::uint32_t length;
    };
    static constexpr std::size_t BATCH_BYTES = 32 * 1024;
    static constexpr std::size_t BATCH_RECORDS = 512;
    bool CopyRun(Walk &walk, std::uint64_t from, std::uint64_t end, const ReadRequest &request,
	    std::uint64_t budget, char *bytes, Copied *copied, std::size_t &count,
	    std::uint64_t &generation) const noexcept;

    enum class Found { Record, Pad, Invalid, Fault };
    /* What the header copied from area offset pos is (never Fault). */
    Found CheckRecordHeader(std::uint64_t pos,
	    const unsigned char header[RECORD_HEADER]) const noexcept;
    Found RecordHeaderAt(std::uint64_t pos, unsigned char header[RECORD_HEADER]) const noexcept;
    /* Where the record at pos really starts (pads and short ends wrap). */
    Found Normalise(std::uint64_t &pos, unsigned char header[RECORD_HEADER]) const noexcept;
    Found Resync(std::uint64_t &pos, std::uint64_t lowest, std::uint64_t below,
	    std::uint64_t limit, unsigned char header[RECORD_HEADER]) const noexcept;
    Found ResyncWithin(std::uint64_t &pos, std::uint64_t lowest, std::uint64_t below,
	    std::uint64_t &walked, unsigned char header[RECORD_HEADER]) const noexcept;
    bool DropOldest(State &state, std::uint64_t &walked) const noexcept;

    /*
     * A sound log's records lie one after another in at most one lap of
     * the area, from the tail to the head. A walk along them (over
     * records, wraps and damage skipped) that goes further than WALK_LAPS
     * laps is going round records that overlap, which only a forged file
     * holds: it stops, lest such a file make a read return the area
     * hundreds of times over or an append scan it for hours.
     */
    static constexpr std::uint64_t WALK_LAPS = 2;
    /* Bytes forward from one area offset to another (either may be the
     * area size, which is offset 0 again). */
    std::uint64_t Ahead(std::uint64_t from, std::uint64_t to) const noexcept {
	/* Offsets are at most the area size: no division (a read walks
	 * this once per record). */
	from = from < area_ ? from : from % area_;
	to = to < area_ ? to : to % area_;
	return to >= from ? to - from : to + area_ - from;
    }
    void Prefault(std::uint64_t head) noexcept;

    unsigned char *base_;
    std::size_t size_;
    std::uint64_t areaOffset_;
    std::uint64_t area_;
    /* The page of the area (counted from the area's first) up to which
     * Prefault has mapped this process's pages; none at first. */
    std::uint64_t prefaulted_ = UINT64_MAX;
    mmapunix::LockFile *lockFile_ = mmapunix::LockFile::Process();
    /* Set: the fence the next append runs first (FenceBeforeAppending). */
    FenceSync fenceSync_ = nullptr;
    void *fenceContext_ = nullptr;

    void WakeWaiters() const noexcept;
    void ForgetDeadWaiters(std::uint32_t counted) const noexcept;
};

/* Whether a state is possible in an area of areaSize bytes. */
inline bool Plausible(const State &s, std::uint64_t areaSize) noexcept {
    return s.tailSeq >= 1 && s.tailSeq <= s.nextSeq && s.nextSeq < (std::uint64_t{1} << 62)
	    && s.headPos <= areaSize && s.tailPos < areaSize
	    && (s.headPos & 7) == 0 && (s.tailPos & 7) == 0
	    && s.Count() <= areaSize / RECORD_HEADER;
}

/*
 * Seqlock read of the slot the generation names: retried while a writer
 * publishes; a stable slot that fails its checks is Garbled.
 */
inline Status Log::Snapshot(State &state) const noexcept {
    for (int attempt = 0; attempt < 100000; attempt++) {
	std::uint64_t before = 0, after = 0;
	std::uint64_t field[SLOT_FIELDS];
	const bool ok = Guarded([&] {
	    before = Little64(Word<std::uint64_t>(H_GENERATION).load(std::memory_order_acquire));
	    const std::size_t slot = H_SLOTS + (before & 1) * SLOT_SIZE;
	    for (int i = 0; i < SLOT_FIELDS; i++) {
		field[i] = Little64(Word<std::uint64_t>(slot + 8 * i).load(std::memory_order_relaxed));
	    }
	    std::atomic_thread_fence(std::memory_order_acquire);
	    after = Little64(Word<std::uint64_t>(H_GENERATION).load(std::memory_order_relaxed));
	});
	if (!ok) {
	    return Status::Fault;
	}
	if (before != after) {
	    continue;
	}
	unsigned char bytes[8 * S_CHECK];
	for (int i = 0; i < S_CHECK; i++) {
	    Store64(bytes + 8 * i, field[i]);
	}
	state.generation = field[S_GENERATION];
	state.nextSeq = field[S_NEXT_SEQ];
	state.tailSeq = field[S_TAIL_SEQ];
	state.headPos = field[S_HEAD_POS];
	state.tailPos = field[S_TAIL_POS];
	if (field[S_CHECK] != Crc32c(0, bytes, sizeof bytes) || state.generation != before
		|| !Plausible(state, area_)) {
	    return Status::Garbled;
	}
	return Status::Ok;
    }
    return Status::Garbled;	/* a generation that never stops moving */
}

inline Status Log::Refresh(State &known) const noexcept {
    std::uint64_t generation = 0;
    if (!Guarded([&] { generation = GenerationAfterCopies(); })) {
	return Status::Fault;
    }
    return Refresh(known, generation);
}

/*
 * Commit state as the next generation: write the slot the current
 * readers are not using, then switch to it with one store. The caller
 * holds the append lock. A fault here is ignored: the next access to
 * the header faults too and reports it.
 */
inline void Log::Publish(State &state) const noexcept {
    state.generation++;
    unsigned char bytes[8 * S_CHECK];
    const std::uint64_t field[S_CHECK] = {state.generation, state.nextSeq, state.tailSeq,
	    state.headPos, state.tailPos};
    for (int i = 0; i < S_CHECK; i++) {
	Store64(bytes + 8 * i, field[i]);
    }
    const std::uint64_t check = Crc32c(0, bytes, sizeof bytes);
    Guarded([&] {
	/* A reader that sees any of these stores sees the old generation
	 * change before it trusts what it copied (seqlock). */
	std::atomic_thread_fence(std::memory_order_release);
	const std::size_t slot = H_SLOTS + (state.generation & 1) * SLOT_SIZE;
	for (int i = 0; i < S_CHECK; i++) {
	    Word<std::uint64_t>(slot + 8 * i).store(Little64(field[i]), std::memory_order_relaxed);
	    MMAPLOG_CRASH_POINT();
	}
	Word<std::uint64_t>(slot + 8 * S_CHECK).store(Little64(check), std::memory_order_relaxed);
	MMAPLOG_CRASH_POINT();
	Word<std::uint64_t>(H_GENERATION).store(Little64(state.generation),
		std::memory_order_release);
	MMAPLOG_CRASH_POINT();
	std::atomic_thread_fence(std::memory_order_release);
    });
}

/*
 * Read the record header at area offset pos. Record: magic, header
 * checksum and length all fit. Pad: a wrap marker (or too little room
 * left for a header): the next record is at offset 0.
 */
inline Log::Found Log::RecordHeaderAt(std::uint64_t pos,
	unsigned char header[RECORD_HEADER]) const noexcept {
    if (pos + RECORD_HEADER > area_) {
	return Found::Pad;
    }
    if (!Get(areaOffset_ + pos, header, RECORD_HEADER)) {
	return Found::Fault;
    }
    return CheckRecordHeader(pos, header);
}

inline Log::Found Log::CheckRecordHeader(std::uint64_t pos,
	const unsigned char header[RECORD_HEADER]) const noexcept {
    const std::uint32_t magic = Load32(header + R_MAGIC);
    if (magic == PAD_MAGIC) {
	return Found::Pad;
    }
    if (magic != RECORD_MAGIC
	    || Load32(header + R_HEAD_CHECK) != Crc32c(0, header, R_HEAD_CHECK)
	    || RecordSize(Load32(header + R_LENGTH)) > area_ - pos) {
	return Found::Invalid;
    }
    return Found::Record;
}

inline Log::Found Log::Normalise(std::uint64_t &pos,
	unsigned char header[RECORD_HEADER]) const noexcept {
    Found found = RecordHeaderAt(pos, header);
    if (found == Found::Pad && pos != 0) {
	pos = 0;
	found = RecordHeaderAt(pos, header);
    }
    return found == Found::Pad ? Found::Invalid : found;
}

/*
 * After a record that failed its checks at pos, look for the next good
 * one: from pos itself (a sound record may sit there with a number not
 * expected), scan on at 8-byte steps (wrapping at the end of the area) for at
 * most limit bytes, for a header whose sequence number is at least
 * lowest and below below. Found::Record leaves pos and header on it.
 */
inline Log::Found Log::Resync(std::uint64_t &pos, std::uint64_t lowest, std::uint64_t below,
	std::uint64_t limit, unsigned char header[RECORD_HEADER]) const noexcept {
    for (std::uint64_t scanned = 0; scanned < limit; scanned += 8) {
	if (scanned > 0) {
	    pos = pos + 8 < area_ ? pos + 8 : 0;
	}
	const Found found = RecordHeaderAt(pos, header);
	if (found == Found::Fault) {
	    return found;
	}
	const std::uint64_t seq = Load64(header + R_SEQ);
	if (found == Found::Record && seq >= lowest && seq < below) {
	    return found;
	}
    }
    return Found::Invalid;
}

/*
 * Resync within what is left of a walk's WALK_LAPS laps (walked: the
 * bytes the walk has gone so far, to which this adds its own): Invalid
 * once they are used up.
 */
inline Log::Found Log::ResyncWithin(std::uint64_t &pos, std::uint64_t lowest,
	std::uint64_t below, std::uint64_t &walked,
	unsigned char header[RECORD_HEADER]) const noexcept {
    const std::uint64_t budget = WALK_LAPS * area_;
    if (walked >= budget) {
	return Found::Invalid;
    }
    const std::uint64_t from = pos;
    const Found found = Resync(pos, lowest, below, std::min(area_, budget - walked), header);
    walked += Ahead(from, pos);
    return found;
}

/*
 * Drop the oldest record from state (the caller holds the lock). A
 * damaged oldest record is stepped over by finding the next good one;
 * with none, or once the drops for one record have walked WALK_LAPS laps
 * (walked counts their bytes), the log becomes empty. False on a fault.
 */
inline bool Log::DropOldest(State &state, std::uint64_t &walked) const noexcept {
    unsigned char header[RECORD_HEADER];
    std::uint64_t pos = state.tailPos;
    Found found = Normalise(pos, header);
    walked += Ahead(state.tailPos, pos);
    if (found == Found::Record && Load64(header + R_SEQ) == state.tailSeq) {
	pos += RecordSize(Load32(header + R_LENGTH));
	walked += RecordSize(Load32(header + R_LENGTH));
	state.tailSeq++;
    } else if (found != Found::Fault) {
	found = ResyncWithin(pos, state.tailSeq + 1, state.nextSeq, walked, header);
	if (found == Found::Record) {
	    state.tailSeq = Load64(header + R_SEQ);
	}
    }
    if (found == Found::Fault) {
	return false;
    }
    if (found != Found::Record || state.Count() == 0) {
	MakeEmpty(state, area_);
	return true;
    }
    if (pos >= area_) {
	pos = 0;
    }
    state.tailPos = pos;
    return true;
}

/*
 * Make this process's mapping of the pages just past head writable now,
 * outside the append lock, by a compare-and-swap of a page's first word
 * from 0 to 0: a write access that changes no byte, whatever other
 * writers store there meanwhile. Each process takes a page fault on its
 * first write to each page of its mapping (and again after the kernel
 * has written the page back), several microseconds in a virtual
 * machine; taken inside the lock, those faults stall every other
 * appender, and with several writers each page faults in each of them.
 * So after each append this process maps the pages up to PREFAULT_PAGES
 * past the head, one page at a time as the head moves: its next records
 * land on pages already mapped. A head that jumped further (other
 * writers appended a lot) costs one page, not a window.
 */
inline void Log::Prefault(std::uint64_t head) noexcept {
    constexpr std::uint64_t PREFAULT_PAGES = 2;
    const std::uint64_t page = mmapunix::PageSize();
    const std::uint64_t first = areaOffset_ / page;
    const std::uint64_t pages = (areaOffset_ + area_ - 1) / page + 1 - first;
    const std::uint64_t target = ((areaOffset_ + head) / page - first + PREFAULT_PAGES) % pages;
    std::uint64_t behind = prefaulted_ < pages ? (target + pages - prefaulted_) % pages : 1;
    if (behind == 0) {
	return;
    }
    if (behind > PREFAULT_PAGES) {
	behind = 1;
    }
    mmapunix::GuardedCall([&] {
	for (std::uint64_t k = behind; k-- > 0;) {
	    const std::uint64_t at = std::max((first + (target + pages - k) % pages) * page,
		    areaOffset_);
	    std::uint64_t zero = 0;
	    Word<std::uint64_t>(at).compare_exchange_strong(zero, 0, std::memory_order_relaxed);
	}
    }, base_, base_ + size_);
    prefaulted_ = target;
}

/*
 * Holds the append lock (mmapunix's robust lock word) for one append and
 * releases it however the append leaves. An append holds it for well
 * under a microsecond, so a locker that finds it taken first watches it
 * for about that long before LockWord puts it to sleep: sleeping and
 * being woken cost system calls, and a lock handed over through them
 * keeps the sleepers flag, so that every later release costs a wake-up.
 */
class AppendLock {
public:
    /* word lies in the header at header; a fault there (the file shrank)
     * must not kill the process, even in the release. file: the log's
     * lock file. */
    AppendLock(std::atomic<std::uint64_t> &word, const unsigned char *header,
	    mmapunix::LockFile &file) noexcept
	: word_(word), header_(header), file_(file) {}
    /* See Log::Append for slept and interrupted. */
    template <typename Interrupted>
    mmapunix::LockOutcome Take(int &error, bool &slept, Interrupted &&interrupted) noexcept {
	for (int spin = 0; spin < SPINS && word_.load(std::memory_order_relaxed) != 0; spin++) {
	    Pause();
	}
	/* A dead holder's append never committed: taking over is safe. */
	const mmapunix::LockOutcome outcome = mmapunix::LockWord(word_, file_, slept, error,
		interrupted);
	held_ = outcome == mmapunix::LockOutcome::Acquired
		|| outcome == mmapunix::LockOutcome::TookOverFromDeadHolder;
	if (outcome == mmapunix::LockOutcome::HeldByThisThread) {
	    error = EDEADLK;
	}
	return outcome;
    }
    bool Held() const noexcept { return held_; }
    ~AppendLock() {
	if (held_) {
	    mmapunix::GuardedCall([this] { mmapunix::UnlockWord(word_, file_); }, header_,
		    header_ + HEADER_SIZE);
	}
    }
    AppendLock(const AppendLock &) = delete;
    AppendLock &operator=(const AppendLock &) = delete;

private:
    static constexpr int SPINS = 400;
    static void Pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
    }

    std::atomic<std::uint64_t> &word_;
    const unsigned char *header_;
    mmapunix::LockFile &file_;
    bool held_ = false;
};

template <typename Interrupted>
inline Status Log::TakeLock(AppendLock &lock, int &error, bool &slept,
	Interrupted &&interrupted) noexcept {
    mmapunix::LockOutcome outcome = mmapunix::LockOutcome::Failed;
    if (!Guarded([&] { outcome = lock.Take(error, slept, interrupted); })) {
	return Status::Fault;
    }
    if (outcome == mmapunix::LockOutcome::Interrupted) {
	return Status::Interrupted;
    }
    return lock.Held() ? Status::Ok : Status::Lock;
}

template <typename Interrupted>
inline Status Log::Append(const Message *messages, std::size_t count, std::int64_t timeMicros,
	std::uint64_t &lastSeq, int &lockError, bool &slept,
	Interrupted &&interrupted) noexcept {
    for (std::size_t i = 0; i < count; i++) {
	if (messages[i].length > MaxMessage()) {
	    return Status::TooLarge;
	}
    }
    /* The payload checksums, before the lock: a long message's would
     * hold up every other appender. */
    constexpr std::size_t ON_STACK = 16;
    std::uint32_t checksOnStack[ON_STACK];
    std::unique_ptr<std::uint32_t[]> checksOnHeap;
    std::uint32_t *checks = checksOnStack;
    if (count > ON_STACK) {
	checksOnHeap.reset(new (std::nothrow) std::uint32_t[count]);
	if (!checksOnHeap) {
	    return Status::NoMemory;
	}
	checks = checksOnHeap.get();
    }
    for (std::size_t i = 0; i < count; i++) {
	checks[i] = Crc32c(0, messages[i].bytes, messages[i].length);
    }
    Status status = Status::Ok;
    bool published = false;
    std::uint64_t newHead = 0;	/* where the last commit left the head */
    {
	AppendLock lock(Word<std::uint64_t>(H_LOCK), base_, *lockFile_);
	if ((status = TakeLock(lock, lockError, slept, interrupted)) != Status::Ok) {
	    return status;
	}
	State state;
	status = Snapshot(state);
	if (status == Status::Ok && fenceSync_ != nullptr) {
	    std::uint64_t destroyed = 0;
	    status = FenceHeld(state, destroyed, lockError, [this](std::uint64_t from,
		    std::uint64_t bytes) { return fenceSync_(fenceContext_, from, bytes); });
	    if (status == Status::Ok) {
		fenceSync_ = nullptr;
	    }
	}
	for (std::size_t i = 0; status == Status::Ok && i < count; i++) {
	    const Message &m = messages[i];
	    const std::uint64_t size = RecordSize(m.length);
	    const std::uint64_t head = state.headPos;
	    const std::uint64_t place = head + size <= area_ ? head : 0;
	    /* Bytes from head on that this record makes unusable. */
	    const std::uint64_t span = place == head ? size : area_ - head + size;
	    bool dropped = false;
	    std::uint64_t walked = 0;
	    while (state.Count() > 0) {
		const std::uint64_t free = (state.tailPos + area_ - head % area_) % area_;
		/* (The count bound only binds after a state was garbled.) */
		if (free >= span && state.Count() < area_ / RECORD_HEADER) {
		    break;
		}
		if (!DropOldest(state, walked)) {
		    status = Status::Fault;
		    break;
		}
		dropped = true;
	    }
	    if (status != Status::Ok) {
		break;
	    }
	    if (dropped) {
		/* The space is no longer anyone's before it is overwritten. */
		Publish(state);
	    }
	    unsigned char header[RECORD_HEADER] = {};
	    Store32(header + R_MAGIC, RECORD_MAGIC);
	    Store32(header + R_LENGTH, static_cast<std::uint32_t>(m.length));
	    Store64(header + R_SEQ, state.nextSeq);
	    Store64(header + R_TIME, static_cast<std::uint64_t>(timeMicros));
	    Store32(header + R_DATA_CHECK, checks[i]);
	    Store32(header + R_HEAD_CHECK, Crc32c(0, header, R_HEAD_CHECK));
	    unsigned char pad[8] = {};
	    Store32(pad, PAD_MAGIC);
	    unsigned char *at = base_ + areaOffset_ + place;
	    const bool wrapped = place != head && head + sizeof pad <= area_;
	    const bool written = mmapunix::GuardedCall([&] {
		if (wrapped) {
		    std::memcpy(base_ + areaOffset_ + head, pad, sizeof pad);
		    MMAPLOG_CRASH_POINT();
		}
		std::memcpy(at, header, RECORD_HEADER);
		MMAPLOG_CRASH_POINT();
		std::memcpy(at + RECORD_HEADER, m.bytes, m.length);
		MMAPLOG_CRASH_POINT();
		std::memset(at + RECORD_HEADER + m.length, 0, size - RECORD_HEADER - m.length);
		MMAPLOG_CRASH_POINT();
	    }, base_, base_ + size_) == nullptr;
	    if (!written) {
		status = Status::Fault;
		break;
	    }
	    if (state.Count() == 0) {
		state.tailPos = place;
	    }
	    lastSeq = state.nextSeq++;
	    state.headPos = place + size;
	    Publish(state);
	    published = true;
	    newHead = state.headPos;
	}
    }
    /*
     * After the unlock, so that a woken reader does not find the lock
     * taken. The wake counter changes only when someone waits, so that
     * appenders do not all write one more shared word. The fence pairs
     * with the one in Wait: either this load sees the waiter counted, or
     * the waiter's look at the state sees this append.
     */
    if (published) {
	WakeWaiters();
	Prefault(newHead);
    }
    return status;
}

template <typename Interrupted, typename Sync>
inline Status Log::Fence(std::uint64_t &destroyed, int &error, bool &slept,
	Interrupted &&interrupted, Sync &&sync) noexcept {
    destroyed = 0;
    AppendLock lock(Word<std::uint64_t>(H_LOCK), base_, *lockFile_);
    if (const Status taken = TakeLock(lock, error, slept, interrupted); taken != Status::Ok) {
	return taken;
    }
    State state;
    const Status status = Snapshot(state);
    if (status != Status::Ok) {
	return status;
    }
    return FenceHeld(state, destroyed, error, sync);
}

template <typename Sync>
inline Status Log::FenceHeld(const State &state, std::uint64_t &destroyed, int &error,
	Sync &&sync) noexcept {
    destroyed = 0;
    unsigned char *const area = base_ + areaOffset_;
    std::uint64_t low = area_, high = 0;	/* the bytes changed */
    const bool walked = mmapunix::GuardedCall([&] {
	/* seq: the lowest number a reader still looks for. A header is
	 * only checksummed where the magic matches. */
	std::uint64_t seq = state.tailSeq;
	std::uint64_t pos = state.tailPos;
	for (std::uint64_t covered = 0; covered < area_;) {
	    std::uint64_t step = 8;
	    if (pos + RECORD_HEADER <= area_ && Load32(area + pos + R_MAGIC) == RECORD_MAGIC
		    && Load32(area + pos + R_HEAD_CHECK) == Crc32c(0, area + pos, R_HEAD_CHECK)) {
		const std::uint64_t number = Load64(area + pos + R_SEQ);
		const std::uint32_t length = Load32(area + pos + R_LENGTH);
		if (number >= state.nextSeq) {
		    /* The whole header, not just its magic: a header of 32
		     * bytes may span two sectors, and a power loss that tore
		     * the record a later append writes here could pair that
		     * record's magic with the rest of this header, checksum
		     * and all, and bring it back. */
		    std::memset(area + pos, 0, RECORD_HEADER);
		    MMAPLOG_CRASH_POINT();
		    low = std::min(low, pos);
		    high = std::max(high, pos + RECORD_HEADER);
		    destroyed++;
		} else if (number >= seq && RecordSize(length) <= area_ - pos) {
		    /* What a reader accepts here: a committed record, kept
		     * whole if its payload is sound, else scanned through
		     * as the reader's resync does. */
		    seq = number + 1;
		    if (Crc32c(0, area + pos + RECORD_HEADER, length)
			    == Load32(area + pos + R_DATA_CHECK)) {
			step = RecordSize(length);
		    }
		}
	    }
	    covered += step;
	    pos += step;
	    if (pos >= area_) {
		pos -= area_;
	    }
	}
    }, base_, base_ + size_) == nullptr;
    if (!walked) {
	return Status::Fault;
    }
    /*
     * Durable before the lock goes: once it is released, appends commit
     * records numbered from next on, and a later state with a larger
     * next may reach the disk. Were the destroyed headers still only in
     * memory then, a second power loss could bring them back under
     * numbers that the state on the disk now accepts.
     */
    if (destroyed > 0) {
	error = sync(areaOffset_ + low, high - low);
	MMAPLOG_CRASH_POINT();
	if (error != 0) {
	    return Status::Sync;
	}
    }
    return Status::Ok;
}

/*
 * From walk, while the records are whole and numbered as expected, step
 * over those below from and copy the others, with their payloads
 * checked, into bytes (BATCH_BYTES) and copied (BATCH_RECORDS, and no
 * more than request.ahead), count of them; then read the committed
 * generation. One guard covers it all, and headers are read where they
 * lie. Stops at the batch's end, or before a record that needs Read's
 * careful path: one that fails a check (damaged, or overwritten under
 * us), is longer than request.longest or than the batch, or lies past
 * the walk's budget. walk is left on the first record not taken. False
 * on a fault.
 */
inline bool Log::CopyRun(Walk &walk, std::uint64_t from, std::uint64_t end,
	const ReadRequest &request, std::uint64_t budget, char *bytes, Copied *copied,
	std::size_t &count, std::uint64_t &generation) const noexcept {
    const unsigned char *area = base_ + areaOffset_;
    const std::size_t most = std::min(request.ahead, BATCH_RECORDS);
    std::uint32_t used = 0;
    count = 0;
    return mmapunix::GuardedCall([&] {
	while (walk.seq < end && walk.wanted > 0 && walk.walked <= budget && count < most) {
	    /* As Normalise: a pad, or no room for a header, wraps to 0. */
	    std::uint64_t pos = walk.pos + RECORD_HEADER <= area_ ? walk.pos : 0;
	    unsigned char header[RECORD_HEADER];
	    std::memcpy(header, area + pos, RECORD_HEADER);
	    Found found = CheckRecordHeader(pos, header);
	    if (found == Found::Pad && pos != 0) {
		pos = 0;
		std::memcpy(header, area, RECORD_HEADER);
		found = CheckRecordHeader(pos, header);
	    }
	    if (found != Found::Record || Load64(header + R_SEQ) != walk.seq) {
		return;
	    }
	    const std::uint32_t length = Load32(header + R_LENGTH);
	    if (walk.seq >= from) {
		if (length > request.longest || length > BATCH_BYTES - used) {
		    return;
		}
		char *copy = bytes + used;
		std::memcpy(copy, area + pos + RECORD_HEADER, length);
		if (Crc32c(0, copy, length) != Load32(header + R_DATA_CHECK)) {
		    return;
		}
		copied[count++] = {walk.seq, static_cast<std::int64_t>(Load64(header + R_TIME)),
			used, length};
		used += length;
		walk.wanted--;
	    }
	    walk.walked += Ahead(walk.pos, pos) + RecordSize(length);
	    walk.pos = pos + RecordSize(length);
	    walk.seq++;
	}
	generation = GenerationAfterCopies();
    }, base_, base_ + size_) == nullptr;
}

/*
 * Walk from the oldest record the snapshot keeps to the newest, keeping
 * those the request asks for. Every kept record passed its header and
 * payload checks and has exactly the sequence number expected. A record
 * that fails them is skipped by resynchronising on the next good one.
 * Records are copied in batches (CopyRun), each followed by a look at
 * the committed state, which must still keep a record for it to be
 * handed over; the walk goes on from the new oldest when writers have
 * dropped what it was about to read. When the walk ends, the committed
 * state is read again for ReadResult.
 */
template <typename Visit>
inline Status Log::Read(const ReadRequest &request, ReadResult &result, Visit &&visit) const {
    State &start = result.start;
    Status status = Snapshot(start);
    if (status != Status::Ok) {
	return status;
    }
    std::uint64_t from = request.from;
    if (request.last < start.Count()) {
	from = std::max(from, start.nextSeq - request.last);
    }
    Walk walk{start.tailSeq, start.tailPos, 0, request.count};
    std::uint64_t &seq = walk.seq;
    std::uint64_t &pos = walk.pos;
    std::uint64_t &walked = walk.walked;	/* bytes walked from start.tailPos */
    State known = start;
    const std::unique_ptr<char[]> batchBytes(new char[BATCH_BYTES]);
    const std::unique_ptr<Copied[]> batch(new Copied[BATCH_RECORDS]);
    std::string payload;
    unsigned char header[RECORD_HEADER];
    const std::uint64_t budget = WALK_LAPS * area_;
    /* Visit the copies that known, refreshed after them, still keeps;
     * skip to its oldest if the writers have dropped the walk's next
     * record. */
    const auto handOver = [&](Status refreshed, const Copied *copies, std::size_t count,
	    const char *bytes) -> Status {
	if (refreshed != Status::Ok) {
	    return refreshed;
	}
	for (std::size_t i = 0; i < count; i++) {
	    const Copied &c = copies[i];
	    if (c.seq >= known.tailSeq && !visit(c.seq, c.time, bytes + c.at, c.length)) {
		return Status::Stopped;
	    }
	}
	if (known.tailSeq > seq) {
	    walked += Ahead(pos, known.tailPos);
	    seq = known.tailSeq;
	    pos = known.tailPos;
	}
	return Status::Ok;
    };
    while (seq < start.nextSeq && walk.wanted > 0) {
	std::size_t copies = 0;
	std::uint64_t generation = 0;
	if (!CopyRun(walk, from, start.nextSeq, request, budget, batchBytes.get(),
		batch.get(), copies, generation)) {
	    return Status::Fault;
	}
	if (copies > 0) {
	    if ((status = handOver(Refresh(known, generation), batch.get(), copies,
		    batchBytes.get())) != Status::Ok) {
		return status;
	    }
	    continue;
	}
	if (seq >= start.nextSeq || walk.wanted == 0) {
	    break;
	}
	/* The careful path, for the one record CopyRun stopped before. */
	if (walked > budget) {
	    /* Round and round overlapping records: the rest is damaged. */
	    if (start.nextSeq > from) {
		result.damaged += start.nextSeq - std::max(seq, from);
	    }
	    break;
	}
	const std::uint64_t at = pos;
	const Found found = Normalise(pos, header);
	walked += Ahead(at, pos);
	if (found == Found::Fault) {
	    return Status::Fault;
	}
	const bool numbered = found == Found::Record && Load64(header + R_SEQ) == seq;
	const std::uint32_t length = numbered ? Load32(header + R_LENGTH) : 0;
	bool sound = numbered;
	if (numbered && seq >= from) {
	    if (length > request.longest) {
		result.longSeq = seq;
		result.longLength = length;
		return Status::TooLong;
	    }
	    payload.resize(length);
	    if (!Get(areaOffset_ + pos + RECORD_HEADER, &payload[0], length)) {
		return Status::Fault;
	    }
	    sound = Crc32c(0, payload.data(), length) == Load32(header + R_DATA_CHECK);
	}
	if (!sound) {
	    /* Overwritten under us? Then carry on from the new oldest. */
	    State now;
	    if ((status = Snapshot(now)) != Status::Ok) {
		return status;
	    }
	    if (now.tailSeq > seq) {
		walked += Ahead(pos, now.tailPos);
		seq = now.tailSeq;
		pos = now.tailPos;
		continue;
	    }
	    /* Damaged: on to the next sound record (which, when only this
	     * one's payload failed, is not the one at pos). */
	    const Found next = ResyncWithin(pos, numbered ? seq + 1 : seq, start.nextSeq,
		    walked, header);
	    if (next == Found::Fault) {
		return Status::Fault;
	    }
	    const std::uint64_t skipTo = next == Found::Record
		    ? Load64(header + R_SEQ) : start.nextSeq;
	    if (skipTo > from) {
		result.damaged += skipTo - std::max(seq, from);
	    }
	    seq = skipTo;
	    continue;
	}
	const Copied one{seq, static_cast<std::int64_t>(Load64(header + R_TIME)), 0, length};
	pos += RecordSize(length);
	walked += RecordSize(length);
	seq++;
	if (one.seq >= from) {
	    walk.wanted--;
	    if ((status = handOver(Refresh(known), &one, 1, payload.data())) != Status::Ok) {
		return status;
	    }
	}
    }
    return Snapshot(result.state);
}

/*
 * The waiters count only says whether to wake anyone; a waiter killed
 * while it slept leaves it raised for good, and every append would pay a
 * futex call. So each process counted holds a read lock on its lock
 * file's waiting byte while it is (see LockFile::BeginWaiting), and an
 * appender whose wake-up woke nobody looks, at most once a second per
 * process, whether anyone holds that byte: if no one does, the count
 * only counts the dead, and it sets it to 0 from the value it saw. (A
 * waiter that comes meanwhile changes the value, and the swap fails.)
 */
constexpr std::int64_t WAITERS_CHECK_MS = 1000;

inline void Log::WakeWaiters() const noexcept {
    std::uint32_t counted = 0;
    int woken = 0;
    Guarded([&] {
	std::atomic_thread_fence(std::memory_order_seq_cst);
	counted = Word<std::uint32_t>(H_WAITERS).load(std::memory_order_relaxed);
	if (counted != 0) {
	    Word<std::uint32_t>(H_WAKE).fetch_add(1, std::memory_order_seq_cst);
	    woken = mmapunix::WakeWaiters(Word<std::uint32_t>(H_WAKE), INT_MAX);
	}
    });
    if (counted == 0 || woken != 0) {
	return;
    }
    static std::atomic<std::int64_t> lastCheck{INT64_MIN / 2};
    struct timespec now;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    const std::int64_t nowMs = now.tv_sec * 1000LL + now.tv_nsec / 1000000;
    std::int64_t last = lastCheck.load(std::memory_order_relaxed);
    if (nowMs - last < WAITERS_CHECK_MS
	    || !lastCheck.compare_exchange_strong(last, nowMs, std::memory_order_relaxed)) {
	return;
    }
    ForgetDeadWaiters(counted);
}

inline void Log::ForgetDeadWaiters(std::uint32_t counted) const noexcept {
    if (!lockFile_->AnyoneWaiting()) {
	Guarded([&] {
	    Word<std::uint32_t>(H_WAITERS).compare_exchange_strong(counted, 0,
		    std::memory_order_seq_cst);
	});
    }
}

inline void Log::ForgetDeadWaiters() noexcept {
    std::uint32_t counted = 0;
    if (Guarded([&] {
	    counted = Word<std::uint32_t>(H_WAITERS).load(std::memory_order_seq_cst);
	}) && counted != 0) {
	ForgetDeadWaiters(counted);
    }
}

inline Status Log::Wait(std::uint64_t seq, long timeoutMs, unsigned char *wakeHeader,
	bool &arrived, int &error) noexcept {
    unsigned char *words = wakeHeader ? wakeHeader : base_;
    auto &wake = Word<std::uint32_t>(H_WAKE, words);
    auto &waiters = Word<std::uint32_t>(H_WAITERS, words);
    arrived = false;
    error = 0;
    /* Announced before counted, counted off before the announcement ends:
     * see WakeWaiters. */
    if (wakeHeader != nullptr) {
	lockFile_->BeginWaiting();
	if (!Guarded([&] { waiters.fetch_add(1, std::memory_order_seq_cst); }, words)) {
	    lockFile_->EndWaiting();
	    return Status::Fault;
	}
    }
    struct timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t deadline = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + timeoutMs;
    Status status = Status::Ok;
    for (;;) {
	std::uint32_t seen = 0;
	if (!Guarded([&] {
		seen = wake.load(std::memory_order_seq_cst);
		std::atomic_thread_fence(std::memory_order_seq_cst);	/* see Append */
	    }, words)) {
	    status = Status::Fault;
	    break;
	}
	State state;
	if ((status = Snapshot(state)) != Status::Ok) {
	    break;
	}
	if (state.nextSeq > seq) {
	    arrived = true;
	    break;
	}
	long remaining = wakeHeader != nullptr ? -1 : POLL_MS;
	if (timeoutMs >= 0) {
	    ::clock_gettime(CLOCK_MONOTONIC, &now);
	    const std::int64_t left = deadline - (now.tv_sec * 1000LL + now.tv_nsec / 1000000);
	    if (left <= 0) {
		break;
	    }
	    if (remaining < 0 || left < remaining) {
		remaining = static_cast<long>(left);
	    }
	}
	int result = 0;
	if (!Guarded([&] { result = mmapunix::WaitWhileEqual(wake, seen, remaining); }, words)) {
	    status = Status::Fault;
	    break;
	}
	if (result != 0 && result != ETIMEDOUT && result != EINTR) {
	    error = result;
	    break;
	}
    }
    if (wakeHeader != nullptr) {
	/* Never below 0: an appender may have reset the count meanwhile. */
	Guarded([&] {
	    std::uint32_t count = waiters.load(std::memory_order_relaxed);
	    while (count != 0 && !waiters.compare_exchange_weak(count, count - 1,
		    std::memory_order_seq_cst)) {
	    }
	}, words);
	lockFile_->EndWaiting();
    }
    return status;
}

/* The time now in microseconds since the epoch (CLOCK_REALTIME). */
inline std::int64_t NowMicros() noexcept {
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

} // namespace mmaplog

#endif /* MMAP_LOG_H */

/*
 * fuzz_log.cpp --
 *
 *	A libFuzzer harness for the log format layer, generic/mmapLog.h,
 *	on its own (no Tcl). Each input becomes the bytes of a log file in
 *	memory, which is then opened, read every way a script can, appended
 *	to and read again. Whatever the bytes, nothing may crash, and:
 *	    - a read returns records in strictly increasing sequence order,
 *	      all inside the committed state's range, and counts as damaged
 *	      no more than the range holds; their records take at most
 *	      three times the area (forged overlapping records included);
 *	    - -last, -from and -count return the matching part of a full read;
 *	    - after appends, the new records are the newest, numbered on
 *	      from the old next, and exact (unless the harness forged the
 *	      state: a state that says fewer records than the file holds
 *	      makes the next append's number meet an old record's);
 *	    - after appending twice the area's worth, the log is one
 *	      contiguous run with no damage, ending at the newest;
 *	    - every number from oldest to next is a record read or damaged;
 *	    - the fence (a writable open) changes neither the state nor, in
 *	      a state the harness did not forge, what a read returns; our
 *	      own commits always pass Snapshot's checks, and a reopened,
 *	      fenced log reads the appended records back.
 *	A broken rule prints "invariant broken" and aborts.
 *
 *	Input: byte 0 chooses the mode. Even: a log of 8192 + 8 * (byte 1
 *	% 512) bytes with byte 2 records of assorted sizes appended (it may
 *	wrap), then garbled: the rest of the input is read in 3-byte
 *	patches, a 16-bit offset past the fixed header (into the shared
 *	words, the state slots and the records) and a byte to xor there.
 *	With bit 1 of byte 0 set the slot checksums are then recomputed, so
 *	that garbled states get past their check. Odd: the rest of the
 *	input is the whole file, as it is. The append lock word is cleared
 *	in both (a stale holder is the lock's own business, tested
 *	elsewhere).
 *
 *	Built and run by tests/fuzz/libfuzzer.sh after the channel fuzzer.
 */

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../generic/mmapLog.h"

namespace {

void Check(bool ok, const char *what) {
    if (!ok) {
	std::fprintf(stderr, "fuzz_log: invariant broken: %s\n", what);
	std::abort();
    }
}

/* Recompute both slot checksums, so the state's other checks are fuzzed. */
void SealSlots(unsigned char *file) {
    for (int s = 0; s < 2; s++) {
	unsigned char *slot = file + mmaplog::H_SLOTS + s * mmaplog::SLOT_SIZE;
	mmaplog::Store64(slot + 8 * mmaplog::S_CHECK,
		mmaplog::Crc32c(0, slot, 8 * mmaplog::S_CHECK));
    }
}

/* A record as read: its number, time and bytes. */
struct Record {
    std::uint64_t seq;
    std::int64_t time;
    std::string bytes;
};

/* Read as asked; records overwritten meanwhile are dropped, as callers do. */
std::vector<Record> ReadAll(const mmaplog::Log &log, mmaplog::ReadRequest request,
	mmaplog::ReadResult &result) {
    std::vector<Record> records;
    Check(log.Read(request, result, [&](std::uint64_t seq, std::int64_t time,
	    const char *bytes, std::uint32_t length) {
	records.push_back({seq, time, std::string(bytes, length)});
	return true;
    }) == mmaplog::Status::Ok, "read of a sound state failed");
    std::size_t stale = 0;
    while (stale < records.size() && records[stale].seq < result.state.tailSeq) {
	stale++;
    }
    records.erase(records.begin(), records.begin() + stale);
    return records;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char *data, std::size_t size) {
    if (size < 2) {
	return 0;
    }
    const bool raw = (data[0] & 1) != 0;
    std::size_t fileSize;
    std::vector<std::uint64_t> storage;	/* 8-byte aligned, as a mapping */
    unsigned char *file;
    if (raw) {
	fileSize = size - 1;
	storage.assign(fileSize / 8 + 1, 0);
	file = reinterpret_cast<unsigned char *>(storage.data());
	std::memcpy(file, data + 1, fileSize);
    } else {
	fileSize = mmaplog::MIN_FILE_SIZE + 8 * (data[1] % 512);
	storage.assign(fileSize / 8, 0);
	file = reinterpret_cast<unsigned char *>(storage.data());
	mmaplog::FormatHeader(file, fileSize);
	mmaplog::Geometry fresh;
	mmaplog::CheckHeader(file, fileSize, fresh);
	mmaplog::Log maker(file, fileSize, fresh);
	const std::string filler(1500, 'f');
	for (unsigned i = 0; size > 2 && i < data[2]; i++) {
	    const mmaplog::Message m = {reinterpret_cast<const unsigned char *>(filler.data()),
		    (i * 37) % filler.size()};
	    std::uint64_t seq;
	    int error;
	    Check(maker.Append(&m, 1, i, seq, error) == mmaplog::Status::Ok, "setup append");
	}
	const std::size_t room = fileSize - mmaplog::H_FIXED;
	for (std::size_t at = 3; at + 3 <= size; at += 3) {
	    const std::size_t where = mmaplog::H_FIXED + (data[at] | data[at + 1] << 8) % room;
	    file[where] ^= data[at + 2];
	}
	if ((data[0] & 2) != 0) {
	    SealSlots(file);
	}
    }
    if (fileSize < mmaplog::H_FIXED) {
	return 0;
    }
    mmaplog::Geometry geometry;
    if (mmaplog::CheckHeader(file, fileSize, geometry) != mmaplog::HeaderCheck::Ok) {
	return 0;
    }
    Check(geometry.areaOffset + geometry.areaSize <= fileSize, "geometry past the file");
    std::memset(file + mmaplog::H_LOCK, 0, 8);
    mmaplog::Log log(file, fileSize, geometry);
    mmaplog::State state;
    if (log.Snapshot(state) != mmaplog::Status::Ok) {
	return 0;
    }

    /* A full read: ordered, in range, damage bounded. */
    mmaplog::ReadResult all;
    const auto records = ReadAll(log, mmaplog::ReadRequest(), all);
    for (std::size_t i = 0; i < records.size(); i++) {
	Check(records[i].seq >= state.tailSeq && records[i].seq < state.nextSeq,
		"record outside the committed range");
	Check(i == 0 || records[i].seq > records[i - 1].seq, "records out of order");
    }
    Check(records.size() + all.damaged <= state.Count(), "more records than the range");
    /* A walk goes round the area at most twice, and a record fits in it:
     * overlapping records cannot make a read return the area many times. */
    std::uint64_t payload = 0;
    for (const auto &r : records) {
	payload += mmaplog::RecordSize(r.bytes.size());
    }
    Check(payload <= 3 * log.AreaSize(), "a read returned more than three areas' worth");

    /* -last / -from / -count agree with the full read. */
    const std::uint64_t pick = data[size - 1];
    mmaplog::ReadRequest last;
    last.last = pick % 8;
    mmaplog::ReadResult lastResult;
    for (const auto &r : ReadAll(log, last, lastResult)) {
	Check(r.seq + last.last >= state.nextSeq, "-last returned an older record");
    }
    mmaplog::ReadRequest from;
    from.from = state.tailSeq + pick % 16;
    from.count = 1 + pick % 3;
    mmaplog::ReadResult fromResult;
    const auto some = ReadAll(log, from, fromResult);
    Check(some.size() <= from.count, "-count exceeded");
    for (const auto &r : some) {
	Check(r.seq >= from.from, "-from returned an older record");
    }

    /* Every number from oldest to next is a record read or damaged. */
    Check(records.size() + all.damaged == state.Count(), "records + damaged != next - oldest");

    /* A writable open fences: it destroys only record headers numbered
     * next and above, which no read returns, so (in a state the harness
     * did not forge) a read returns the same after it. */
    const bool forged = !raw && (data[0] & 2) != 0;
    auto fence = [](mmaplog::Log &target) {
	std::uint64_t destroyed = 0;
	int error = 0;
	bool slept = false;
	Check(target.Fence(destroyed, error, slept, [] { return false; },
		[](std::uint64_t, std::uint64_t) { return 0; }) == mmaplog::Status::Ok,
		"fence failed");
    };
    fence(log);
    {
	mmaplog::State fencedState;
	Check(log.Snapshot(fencedState) == mmaplog::Status::Ok
		&& fencedState.generation == state.generation, "the fence changed the state");
	mmaplog::ReadResult fenced;
	const auto again = ReadAll(log, mmaplog::ReadRequest(), fenced);
	bool same = again.size() == records.size() && fenced.damaged == all.damaged;
	for (std::size_t i = 0; same && i < again.size(); i++) {
	    same = again[i].seq == records[i].seq && again[i].bytes == records[i].bytes;
	}
	Check(raw || forged || same, "the fence changed what a read returns");
    }

    /* Appends work, whatever was there, and are read back exactly. */
    std::string text(reinterpret_cast<const char *>(data), std::min<std::size_t>(size, 300));
    std::vector<mmaplog::Message> messages;
    for (std::size_t i = 0; i < 3; i++) {
	const std::size_t length = (text.size() * (i + 1)) / 3;
	messages.push_back({reinterpret_cast<const unsigned char *>(text.data()), length});
    }
    std::uint64_t lastSeq = 0;
    int lockError = 0;
    Check(log.Append(messages.data(), messages.size(), 42, lastSeq, lockError)
	    == mmaplog::Status::Ok, "append failed");
    Check(lastSeq == state.nextSeq + 2, "appends not numbered on from next");
    /* Reopened (and fenced, as a writable open does): our own commits
     * always pass the checks, and the counts add up. */
    mmaplog::Log reopened(file, fileSize, geometry);
    mmaplog::State committed;
    Check(reopened.Snapshot(committed) == mmaplog::Status::Ok, "our own commit is refused");
    fence(reopened);
    mmaplog::ReadResult after;
    const auto newest = ReadAll(reopened, mmaplog::ReadRequest(), after);
    Check(newest.size() + after.damaged == after.state.Count(),
	    "records + damaged != next - oldest after appends");
    Check(forged || (!newest.empty() && newest.back().seq == lastSeq), "newest append missing");
    for (std::size_t i = 0; !forged && i < 3 && i < newest.size(); i++) {
	const auto &r = newest[newest.size() - 1 - i];
	const auto &m = messages[2 - i];
	Check(r.seq == lastSeq - i && r.time == 42 && r.bytes.size() == m.length
		&& std::memcmp(r.bytes.data(), m.bytes, m.length) == 0,
		"appended record not read back exactly");
    }
    /* Appending until the old contents are gone leaves a clean log. */
    const std::string lap(200, 'l');
    const mmaplog::Message lapMessage = {reinterpret_cast<const unsigned char *>(lap.data()),
	    lap.size()};
    for (std::size_t i = 0; i <= 2 * geometry.areaSize / mmaplog::RecordSize(lap.size()); i++) {
	Check(log.Append(&lapMessage, 1, 7, lastSeq, lockError) == mmaplog::Status::Ok,
		"append failed");
    }
    mmaplog::ReadResult clean;
    const auto cleaned = ReadAll(log, mmaplog::ReadRequest(), clean);
    Check(clean.damaged == 0, "damage left after a full lap of appends");
    for (std::size_t i = 1; i < cleaned.size(); i++) {
	Check(cleaned[i].seq == cleaned[i - 1].seq + 1, "gap after a full lap of appends");
    }
    Check(!cleaned.empty() && cleaned.back().seq == lastSeq, "newest missing after a lap");
    return 0;
}

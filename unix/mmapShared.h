/*
 * mmapShared.h --
 *
 *	Coordination through a shared region, at the OS level: a 64-bit word
 *	in a mapping used atomically, sleeping until such a word changes and
 *	waking its sleepers (a futex on Linux), and a lock kept in one word
 *	that works between threads and processes and survives its holder's
 *	death (who holds it is decided by mmapOwner.h). Nothing here knows about Tcl, and nothing here guards against
 *	SIGBUS: callers touch words only inside the fault guard of mmapUnix.h.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_SHARED_H
#define MMAP_SHARED_H

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "mmapOwner.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

namespace mmapunix {

/*
 * Other processes see the same bytes, so an atomic must be the bare word
 * with no lock beside it: only lock-free atomics of the word's own size
 * work across processes.
 */
static_assert(std::atomic<std::uint64_t>::is_always_lock_free
	&& sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free
	&& sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

/* The 64-bit word at at, which the caller has checked is 8-byte aligned. */
inline std::atomic<std::uint64_t> &SharedWord(unsigned char *at) noexcept {
    return *reinterpret_cast<std::atomic<std::uint64_t> *>(at);
}

/*
 * A futex is 32 bits wide. Sleeping on a 64-bit word means sleeping on
 * its 32-bit half at the lower address: the low half of the value on a
 * little-endian machine, the high half on a big-endian one.
 * FUTEX_HALF_SHIFT says where that half sits in the value.
 */
constexpr unsigned FUTEX_HALF_SHIFT =
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 32;

inline std::atomic<std::uint32_t> &FutexHalf(std::atomic<std::uint64_t> &word) noexcept {
    return *reinterpret_cast<std::atomic<std::uint32_t> *>(&word);
}
constexpr std::uint32_t FutexHalfOf(std::uint64_t value) noexcept {
    return static_cast<std::uint32_t>(value >> FUTEX_HALF_SHIFT);
}

/*
 * Sleep while word holds expected, for at most timeoutMs milliseconds
 * (negative: no limit). Returns 0 when woken or when the word no longer
 * held expected, ETIMEDOUT, EINTR (a signal handler ran), or another
 * errno value. Like any futex wait it may also return 0 spuriously:
 * callers look at the word again.
 *
 * On Linux this is FUTEX_WAIT without FUTEX_PRIVATE_FLAG, so a sleeper
 * in one process is woken by WakeWaiters in another that maps the same
 * file. Elsewhere there is no portable equivalent: the word is polled
 * every millisecond, which costs a little CPU and up to a millisecond of
 * latency, and WakeWaiters wakes nobody (the sleepers see the change).
 */
inline int WaitWhileEqual(const std::atomic<std::uint32_t> &word,
	std::uint32_t expected, long timeoutMs) noexcept {
#ifdef __linux__
    struct timespec limit;
    limit.tv_sec = timeoutMs / 1000;
    limit.tv_nsec = (timeoutMs % 1000) * 1000000L;
    if (::syscall(SYS_futex, const_cast<std::atomic<std::uint32_t> *>(&word),
	    FUTEX_WAIT, expected, timeoutMs < 0 ? nullptr : &limit,
	    nullptr, 0) == 0) {
	return 0;
    }
    return errno == EAGAIN ? 0 : errno;	/* EAGAIN: the word had changed */
#else
    for (long waited = 0; word.load() == expected; waited++) {
	if (timeoutMs >= 0 && waited >= timeoutMs) {
	    return ETIMEDOUT;
	}
	const struct timespec step = {0, 1000000L};
	if (::nanosleep(&step, nullptr) != 0) {
	    return errno;
	}
    }
    return 0;
#endif
}

/*
 * Wake up to count sleepers on word (INT_MAX: all). Returns how many were
 * woken, or -errno.
 */
inline int WakeWaiters(const std::atomic<std::uint32_t> &word, int count) noexcept {
#ifdef __linux__
    const long woken = ::syscall(SYS_futex,
	    const_cast<std::atomic<std::uint32_t> *>(&word), FUTEX_WAKE, count,
	    nullptr, nullptr, 0);
    return woken >= 0 ? static_cast<int>(woken) : -errno;
#else
    (void) word;
    (void) count;
    return 0;
#endif
}

/*
 *----------------------------------------------------------------------
 * The lock word
 *
 * A lock kept in one shared 64-bit word: 0 when free; else it holds the
 * holder's token (see mmapOwner.h), 62 bits: the low 31 in the futex half
 * beside a "someone sleeps" bit (bit 31), never all 0 there, and the high
 * 31 in the other half. A locker that finds the word held asks the
 * kernel whether the token's holder still lives; one that finds it gone
 * (its thread ended, its process died, the machine rebooted, or the word
 * never named anyone) takes the lock over with a compare-and-swap from
 * the dead holder's value, so of several lockers exactly one succeeds.
 * The tokens of one file's words are unique among live holders, so a
 * word can name the caller only if the caller's thread took it.
 *----------------------------------------------------------------------
 */

enum class LockOutcome {
    Acquired, TookOverFromDeadHolder, HeldByThisThread, Interrupted, Failed
};

namespace detail {

constexpr std::uint32_t LOCK_SLEEPERS = 0x80000000u;
constexpr std::uint32_t LOCK_TOKEN_MASK = 0x7fffffffu;

/* How often a blocked locker checks whether the holder still lives. */
constexpr long LOCK_CHECK_MS = 200;

constexpr std::uint64_t LockValue(std::uint32_t futexHalf, std::uint32_t otherHalf) noexcept {
    return (static_cast<std::uint64_t>(futexHalf) << FUTEX_HALF_SHIFT)
	    | (static_cast<std::uint64_t>(otherHalf) << (32 - FUTEX_HALF_SHIFT));
}
constexpr std::uint64_t TokenValue(std::uint64_t token, std::uint32_t sleepers) noexcept {
    return LockValue((static_cast<std::uint32_t>(token) & LOCK_TOKEN_MASK) | sleepers,
	    static_cast<std::uint32_t>(token >> 31));
}
constexpr bool IsHeld(std::uint64_t value) noexcept {
    return (FutexHalfOf(value) & LOCK_TOKEN_MASK) != 0;
}
/* The token a held word names; beyond TOKEN_MASK when garbled. */
constexpr std::uint64_t TokenOf(std::uint64_t value) noexcept {
    return static_cast<std::uint64_t>(value >> (32 - FUTEX_HALF_SHIFT) & 0xffffffffu) << 31
	    | (FutexHalfOf(value) & LOCK_TOKEN_MASK);
}

} // namespace detail

/*
 * Take the lock, sleeping while a live thread holds it; file is the
 * process's lock file for the file that holds the word (LockFile::
 * Process() for a word no other process sees). Never returns while the
 * lock is held by someone else: Acquired or TookOverFromDeadHolder mean
 * the caller holds it now, HeldByThisThread means the caller already held
 * it (nothing changed), Failed sets error to an errno value (a failed
 * futex call; ENOLCK: no token could be had, or liveness cannot be
 * proved; nothing changed). Interrupted: interrupted(), asked each time a
 * sleep ends without the lock (a signal, or the periodic look at the
 * holder), said to stop; the caller does not hold the lock and may call
 * again with the same slept.
 *
 * A locker that had to sleep (slept is set then) takes the lock with the
 * sleepers bit set, since it cannot know whether others still sleep; at
 * worst that costs one needless wake-up at unlock.
 */
template <typename Interrupted>
inline LockOutcome LockWord(std::atomic<std::uint64_t> &word, LockFile &file, bool &slept,
	int &error, Interrupted interrupted) noexcept {
    using namespace detail;
    const std::uint64_t me = file.ThreadToken(error);
    if (me == 0) {
	return LockOutcome::Failed;
    }
    std::uint64_t seen = word.load(std::memory_order_relaxed);
    for (;;) {
	if (!IsHeld(seen)) {
	    if (word.compare_exchange_weak(seen,
		    TokenValue(me, slept ? LOCK_SLEEPERS : 0),
		    std::memory_order_acquire, std::memory_order_relaxed)) {
		return LockOutcome::Acquired;
	    }
	    continue;
	}
	const std::uint64_t holder = TokenOf(seen);
	if (holder == me) {
	    return LockOutcome::HeldByThisThread;
	}
	const int alive = file.TokenAlive(holder);
	if (alive < 0) {
	    error = -alive;
	    return LockOutcome::Failed;
	}
	if (alive == 0) {
	    const std::uint32_t sleepers = FutexHalfOf(seen) & LOCK_SLEEPERS;
	    if (word.compare_exchange_strong(seen, TokenValue(me, sleepers),
		    std::memory_order_acquire, std::memory_order_relaxed)) {
		return LockOutcome::TookOverFromDeadHolder;
	    }
	    continue;
	}
	if ((FutexHalfOf(seen) & LOCK_SLEEPERS) == 0) {
	    const std::uint64_t marked = seen | LockValue(LOCK_SLEEPERS, 0);
	    if (!word.compare_exchange_weak(seen, marked,
		    std::memory_order_relaxed)) {
		continue;
	    }
	    seen = marked;
	}
	slept = true;
	const int status = WaitWhileEqual(FutexHalf(word), FutexHalfOf(seen),
		LOCK_CHECK_MS);
	if (status != 0 && status != ETIMEDOUT && status != EINTR) {
	    error = status;
	    return LockOutcome::Failed;
	}
	if (status != 0 && interrupted()) {
	    return LockOutcome::Interrupted;
	}
	seen = word.load(std::memory_order_relaxed);
    }
}

/* The same for a caller that nothing interrupts. */
inline LockOutcome LockWord(std::atomic<std::uint64_t> &word, LockFile &file,
	int &error) noexcept {
    bool slept = false;
    return LockWord(word, file, slept, error, [] { return false; });
}

/*
 * Release the lock if this thread holds it (a word taken over by someone
 * else, or never locked, is left alone), waking one sleeper if any.
 */
inline void UnlockWord(std::atomic<std::uint64_t> &word, LockFile &file) noexcept {
    using namespace detail;
    int error = 0;
    const std::uint64_t me = file.ThreadToken(error);
    std::uint64_t seen = word.load(std::memory_order_relaxed);
    for (;;) {
	if (me == 0 || !IsHeld(seen) || TokenOf(seen) != me) {
	    return;
	}
	if (word.compare_exchange_weak(seen, 0, std::memory_order_release,
		std::memory_order_relaxed)) {
	    break;
	}
    }
    if ((FutexHalfOf(seen) & LOCK_SLEEPERS) != 0) {
	WakeWaiters(FutexHalf(word), 1);
    }
}

} // namespace mmapunix

#endif /* MMAP_SHARED_H */

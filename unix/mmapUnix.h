/*
 * mmapUnix.h --
 *
 *	The POSIX layer of the mmap package: owning wrappers for a file
 *	descriptor and a memory mapping, plus the questions generic/ needs to
 *	ask about a descriptor before mapping it. Nothing here knows about Tcl:
 *	every fallible call reports an errno value (0 on success) and leaves it
 *	to the caller to turn that into channel behaviour or a Tcl error.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_UNIX_H
#define MMAP_UNIX_H

#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mmapunix {

/*
 * A file descriptor that is closed when its owner goes away. The mapping
 * itself would survive without it; it is kept so that later questions
 * about the file (its current size) can still be answered after the
 * script has closed the channel it was mapped from.
 */
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept {
	if (this != &other) {
	    reset(std::exchange(other.fd_, -1));
	}
	return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
	if (fd_ >= 0) {
	    ::close(fd_);
	}
	fd_ = fd;
    }

private:
    int fd_ = -1;
};

/*
 * Duplicate fd with close-on-exec set, so a child started by [exec]
 * does not inherit it. Returns 0 or an errno value.
 */
inline int DuplicateFd(int fd, UniqueFd &out) noexcept {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
	return errno;
    }
    out.reset(copy);
    return 0;
}

/* What kind of object a descriptor refers to, as far as mapping goes. */
enum class FileKind { Regular, Device, Other };

struct FileInfo {
    FileKind kind = FileKind::Other;
    std::uint64_t size = 0;	/* st_size; 0 for devices, which have none */
};

inline int DescribeFd(int fd, FileInfo &info) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0) {
	return errno;
    }
    if (S_ISREG(st.st_mode)) {
	info.kind = FileKind::Regular;
    } else if (S_ISCHR(st.st_mode)) {
	info.kind = FileKind::Device;
    } else {
	info.kind = FileKind::Other;
    }
    info.size = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    return 0;
}

/* The VM page size; mmap offsets and msync addresses are multiples of it. */
inline std::size_t PageSize() noexcept {
    static const long size = ::sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::size_t>(size) : 4096;
}

/*
 *----------------------------------------------------------------------
 * The fault guard
 *
 * Touching a mapped page that no longer has file behind it (the file
 * shrank, or a hole in a sparse file cannot get a block on a full disk)
 * raises SIGBUS, whose default action kills the process. Every access to
 * a region goes through GuardedCall (copies through GuardedCopy): it
 * marks the access in a thread-local frame, and the SIGBUS handler jumps
 * back out of a faulting access in the same thread, which then reports
 * failure. A SIGBUS that is
 * not ours (another thread, another address, kill -BUS) is handed to the
 * handler that was installed before ours, so the process behaves as it
 * would without us.
 *----------------------------------------------------------------------
 */

namespace detail {

struct GuardFrame {
    sigjmp_buf jump;
    const unsigned char *low;	/* the guarded region: [low, high) */
    const unsigned char *high;
    const void *faultAt;	/* the address that faulted */
};

/*
 * Set only around a copy, by the thread doing it; the handler runs in
 * that same thread (SIGBUS from a fault is delivered to the faulting
 * thread), so no locking is needed.
 */
inline thread_local GuardFrame *activeFrame = nullptr;
inline struct sigaction previousAction;

inline void HandOn(int signo, siginfo_t *info, void *context) noexcept {
    const struct sigaction &before = previousAction;
    if ((before.sa_flags & SA_SIGINFO) != 0) {
	if (before.sa_sigaction != nullptr) {
	    before.sa_sigaction(signo, info, context);
	}
	return;
    }
    if (before.sa_handler == SIG_IGN) {
	return;
    }
    if (before.sa_handler != SIG_DFL) {
	before.sa_handler(signo);
	return;
    }
    /*
     * Default action: restore it and let the signal through again. A real
     * fault repeats when the faulting instruction is retried; a signal
     * sent by kill(2) is re-raised (it stays pending until we return).
     */
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(signo, &dfl, nullptr);
    ::raise(signo);
}

inline void OnSigbus(int signo, siginfo_t *info, void *context) noexcept {
    GuardFrame *frame = activeFrame;
    if (frame != nullptr && info != nullptr && info->si_code > 0) {
	const auto *at = static_cast<const unsigned char *>(info->si_addr);
	if (at >= frame->low && at < frame->high) {
	    activeFrame = nullptr;
	    frame->faultAt = at;
	    siglongjmp(frame->jump, 1);
	}
    }
    const int savedErrno = errno;	/* the interrupted code may need it */
    HandOn(signo, info, context);
    errno = savedErrno;
}

inline int Install() noexcept {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = OnSigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, &previousAction) == 0 ? 0 : errno;
}

} // namespace detail

/*
 * Install the SIGBUS handler, once per process (later calls return the
 * first call's result). Returns 0 or an errno value.
 */
inline int InstallFaultGuard() noexcept {
    static const int error = detail::Install();
    return error;
}

/*
 * Run action(), which touches the mapped region [regionLow, regionHigh)
 * and may fault there. Returns nullptr when it completed, else the
 * address in the region that hit a page with no file behind it; then the
 * action stopped part way. The action is jumped out of, so it must own
 * nothing that needs destroying and hold no lock when it may fault.
 *
 * sigsetjmp does not save the signal mask (a syscall per call would cost
 * more than most copies), so after a jump SIGBUS, which the kernel
 * blocks while the handler runs, is unblocked here by hand.
 */
template <typename Action>
inline const void *GuardedCall(Action &&action, const void *regionLow,
	const void *regionHigh) noexcept {
    detail::GuardFrame frame;
    frame.low = static_cast<const unsigned char *>(regionLow);
    frame.high = static_cast<const unsigned char *>(regionHigh);
    frame.faultAt = nullptr;
    if (sigsetjmp(frame.jump, 0) != 0) {
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGBUS);
	::pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
	return frame.faultAt;
    }
    detail::activeFrame = &frame;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    action();
    std::atomic_signal_fence(std::memory_order_seq_cst);
    detail::activeFrame = nullptr;
    return nullptr;
}

/*
 * memcpy(dst, src, count), where whichever of them lies in the mapped
 * region may fault: GuardedCall's result. After a fault an unknown part
 * of the bytes has been copied (memcpy need not copy in order).
 */
inline const void *GuardedCopy(void *dst, const void *src, std::size_t count,
	const void *regionLow, const void *regionHigh) noexcept {
    return GuardedCall([=] { std::memcpy(dst, src, count); }, regionLow, regionHigh);
}

/*
 * A mapping of [offset, offset+length) of a file. mmap(2) wants a
 * page-aligned file offset, so the mapping starts at the page boundary at
 * or below offset and data() skips the gap; callers only ever see the
 * bytes they asked for. Unmapped exactly once, by the destructor.
 */
class Mapping {
public:
    Mapping() noexcept = default;
    Mapping(Mapping &&other) noexcept { Swap(other); }
    Mapping &operator=(Mapping &&other) noexcept {
	Mapping doomed(std::move(other));	/* releases our old region */
	Swap(doomed);
	return *this;
    }
    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;
    ~Mapping() { Release(); }

    /*
     * Map length bytes of fd from offset. The caller has checked that the
     * range is sensible for the file; this still refuses sizes that do
     * not fit the address space or off_t. Returns 0 or an errno value.
     */
    static int Create(int fd, std::uint64_t offset, std::uint64_t length,
	    bool writable, bool shared, Mapping &out) noexcept {
	const std::uint64_t page = PageSize();
	const std::uint64_t gap = offset % page;
	const std::uint64_t start = offset - gap;
	if (length == 0 || length > SIZE_MAX - gap
		|| start > static_cast<std::uint64_t>(INT64_MAX)) {
	    return length == 0 ? EINVAL : ENOMEM;
	}
	const std::size_t mappedSize = static_cast<std::size_t>(length + gap);
	const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	const int flags = shared ? MAP_SHARED : MAP_PRIVATE;
	void *base = ::mmap(nullptr, mappedSize, prot, flags, fd,
		static_cast<off_t>(start));
	if (base == MAP_FAILED) {
	    return errno;
	}
	Mapping fresh;
	fresh.base_ = base;
	fresh.mappedSize_ = mappedSize;
	fresh.gap_ = static_cast<std::size_t>(gap);
	fresh.writableShared_ = writable && shared;
	out = std::move(fresh);
	return 0;
    }

    unsigned char *data() const noexcept {
	return static_cast<unsigned char *>(base_) + gap_;
    }
    std::size_t length() const noexcept { return mappedSize_ - gap_; }

    /* The region offset where the page holding region offset at starts
     * (0 for the first, partial page of a region that starts mid-page). */
    std::size_t PageStartOf(std::size_t at) const noexcept {
	const std::size_t start = (gap_ + at) & ~(PageSize() - 1);
	return start > gap_ ? start - gap_ : 0;
    }

    /*
     * msync the pages holding region bytes [from, from+count): MS_SYNC
     * waits for the disk, MS_ASYNC only schedules the write-back. A no-op
     * for private and read-only mappings.
     */
    int SyncRange(std::size_t from, std::size_t count, bool wait) const noexcept {
	if (base_ == nullptr || !writableShared_ || count == 0) {
	    return 0;
	}
	const std::size_t start = (gap_ + from) & ~(PageSize() - 1);
	const std::size_t end = gap_ + from + count;
	return ::msync(static_cast<unsigned char *>(base_) + start, end - start,
		wait ? MS_SYNC : MS_ASYNC) == 0 ? 0 : errno;
    }

    /*
     * Write the dirty pages of a shared writable mapping to the file and
     * wait for the disk, then unmap. Returns the first errno seen, or 0.
     */
    int Close() noexcept {
	const int syncError = SyncRange(0, length(), true);
	const int unmapError = Release();
	return syncError != 0 ? syncError : unmapError;
    }

private:
    void Swap(Mapping &other) noexcept {
	std::swap(base_, other.base_);
	std::swap(mappedSize_, other.mappedSize_);
	std::swap(gap_, other.gap_);
	std::swap(writableShared_, other.writableShared_);
    }
    /* Unmap, leaving an empty Mapping. Returns 0 or an errno value. */
    int Release() noexcept {
	int error = 0;
	if (base_ != nullptr && ::munmap(base_, mappedSize_) != 0) {
	    error = errno;
	}
	base_ = nullptr;
	mappedSize_ = gap_ = 0;
	writableShared_ = false;
	return error;
    }

    void *base_ = nullptr;
    std::size_t mappedSize_ = 0;	/* bytes handed to munmap */
    std::size_t gap_ = 0;		/* offset % page: hidden head */
    bool writableShared_ = false;	/* only these need msync */
};

} // namespace mmapunix

#endif /* MMAP_UNIX_H */

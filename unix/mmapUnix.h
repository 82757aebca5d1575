/*
 * mmapUnix.h --
 *
 *	The POSIX layer of the mmap package: an owning wrapper for a memory
 *	mapping, the questions generic/ needs to ask about a descriptor before
 *	mapping it and about the file after a fault, and the SIGBUS guard.
 *	Nothing here knows about Tcl: every fallible call reports an errno
 *	value (0 on success) and leaves it to the caller to turn that into
 *	channel behaviour or a Tcl error.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_UNIX_H
#define MMAP_UNIX_H

#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace mmapunix {

/* What kind of object a descriptor refers to, as far as mapping goes. */
enum class FileKind { Regular, Device, Other };

struct FileInfo {
    FileKind kind = FileKind::Other;
    std::uint64_t size = 0;	/* st_size; 0 for devices, which have none */
    dev_t device = 0;		/* device and inode: which file it is */
    ino_t inode = 0;
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
    info.device = st.st_dev;
    info.inode = st.st_ino;
    return 0;
}

/* The VM page size; mmap offsets and msync addresses are multiples of it. */
inline std::size_t PageSize() noexcept {
    static const long size = ::sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::size_t>(size) : 4096;
}

/* What a look at a mapped file found. */
struct FileLook {
    std::uint64_t size = 0;
    struct timespec changed = {};	/* st_ctim: its last change of any kind */

    bool ChangedSince(const FileLook &earlier) const noexcept {
	return changed.tv_sec != earlier.changed.tv_sec
		|| changed.tv_nsec != earlier.changed.tv_nsec;
    }
};

/*
 * A mapped file, found again by its name when a fault needs explaining.
 * A mapping keeps no descriptor of its own: closing any descriptor of a
 * file drops every POSIX record lock the process holds on it, so closing
 * ours would release the script's locks. The name comes from
 * /proc/self/fd (Linux); device and inode tell whether it still names the
 * mapped file (not after a rename, a removal or a replacement).
 */
class FileIdentity {
public:
    void Remember(int fd, const FileInfo &info) noexcept {
	device_ = info.device;
	inode_ = info.inode;
	/* thread-self: once a process's main thread has ended, its
	 * /proc/self/fd can no longer be read. */
	char link[40];
	std::snprintf(link, sizeof link, "/proc/thread-self/fd/%d", fd);
	ssize_t length = ::readlink(link, path_, sizeof path_ - 1);
	if (length <= 0) {
	    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	    length = ::readlink(link, path_, sizeof path_ - 1);
	}
	path_[length > 0 ? length : 0] = '\0';
    }

    /*
     * Look at the regular file now. Returns 0 or an errno value: ENOENT
     * when the name no longer leads to the mapped file, ENODEV when that
     * is not a regular file (a device has no size to compare).
     */
    int Look(FileLook &look) const noexcept {
	struct stat st;
	if (path_[0] == '\0') {
	    return ENOENT;
	}
	if (::stat(path_, &st) != 0) {
	    return errno;
	}
	if (!Is(st.st_dev, st.st_ino)) {
	    return ENOENT;
	}
	if (!S_ISREG(st.st_mode)) {
	    return ENODEV;
	}
	look.size = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
	look.changed = st.st_ctim;
	return 0;
    }

    /* Whether device and inode name the remembered file. */
    bool Is(dev_t device, ino_t inode) const noexcept {
	return device == device_ && inode == inode_;
    }

    /* The file's absolute name as it was opened ("" if unknown). */
    const char *Path() const noexcept { return path_; }
    dev_t Device() const noexcept { return device_; }
    ino_t Inode() const noexcept { return inode_; }

    /* Whether the file's file system has less than a page left to give. */
    bool FileSystemFull() const noexcept {
	struct statvfs fs;
	return path_[0] != '\0' && ::statvfs(path_, &fs) == 0
		&& static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < PageSize();
    }

private:
    dev_t device_ = 0;
    ino_t inode_ = 0;
    char path_[PATH_MAX] = "";
};

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
 * failure. A SIGBUS that is not ours (another thread, another address,
 * kill -BUS) is handed to the handler that was installed before ours, so
 * the process behaves as it would without us: a fault kills it even when
 * SIGBUS was ignored.
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
    /* Raised by the kernel for a fault, not sent by kill(2) or raise(3). */
    const bool genuineFault = info != nullptr && info->si_code > 0;
    if (before.sa_handler == SIG_IGN && !genuineFault) {
	return;
    }
    if (before.sa_handler != SIG_DFL && before.sa_handler != SIG_IGN) {
	if ((before.sa_flags & SA_SIGINFO) != 0) {
	    before.sa_sigaction(signo, info, context);
	} else {
	    before.sa_handler(signo);
	}
	return;
    }
    /*
     * Default action, or a fault while SIGBUS was ignored, which the
     * kernel would not let pass either (retrying the instruction would
     * fault for ever): restore the default and let the signal through
     * again. A real fault repeats when the faulting instruction is
     * retried; a signal sent by kill(2) is re-raised (it stays pending
     * until we return).
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
	/*
	 * A private writable mapping would be charged in full against the
	 * commit limit, so a file bigger than RAM + swap could not be mapped
	 * at all; memory is taken only for the pages written. (With strict
	 * overcommit, vm.overcommit_memory=2, the kernel charges it anyway.)
	 */
	const int flags = shared ? MAP_SHARED
		: MAP_PRIVATE | (writable ? MAP_NORESERVE : 0);
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
     * Let the kernel map the region with huge pages where it can
     * (transparent huge pages of the file's page cache, Linux): in a
     * virtual machine each page a process touches first can cost it
     * about 10 microseconds, so one fault per 2 MiB instead of per 4 KiB
     * matters to a region that many processes each walk through. Dirty
     * tracking stays per page: a huge mapping written after a write-back
     * is split, so msync writes no more than before. Advice only: a
     * kernel that cannot keeps small pages. A region smaller than a huge
     * page (2 MiB on x86-64) gains nothing and is left alone, so that a
     * small file on tmpfs is not given a whole huge page.
     */
    void AdviseHugePages() const noexcept {
#ifdef MADV_HUGEPAGE
	if (base_ != nullptr && mappedSize_ >= (std::size_t{2} << 20)) {
	    ::madvise(base_, mappedSize_, MADV_HUGEPAGE);
	}
#endif
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

/*
 * mmapOwner.h --
 *
 *	Who holds a lock word, decided by the kernel. A lock word names its
 *	holder by a token: a random number that one live thread of one
 *	process owns on one file. The thread proves it lives by holding an
 *	open-file-description lock (Linux F_OFD_SETLK) on byte TOKEN_BASE +
 *	token of that file, for as long as it lives; the kernel drops the
 *	lock when the process dies (or the thread ends and releases it, or
 *	the machine reboots), so a waiter asks the kernel (F_OFD_GETLK)
 *	instead of looking up process and thread ids, which another pid
 *	namespace, a reused pid or a zombie main thread would make lie.
 *	OFD locks may lie beyond the end of a file, and one kernel sees the
 *	same locks on one inode from every pid namespace.
 *
 *	OFD locks belong to an open file description, so each process keeps
 *	one descriptor per file (LockFile, shared by every channel and log
 *	of that file in the process, and counted), opened when first needed.
 *	Locks of one description never conflict with each other, so the
 *	tokens of this process's own threads are also kept in a list.
 *
 *	Without OFD locks (not Linux) the word holds process and thread ids,
 *	as before, and liveness comes from kill(pid, 0): see the man page.
 *	Nothing here knows about Tcl.
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_OWNER_H
#define MMAP_OWNER_H

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <new>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/syscall.h>
#endif

#if defined(F_OFD_SETLK) && !defined(MMAP_NO_OFD_LOCKS)
#define MMAP_OFD_LOCKS 1
#endif

namespace mmapunix {

/*
 * Where the liveness bytes lie in a file: far past any data (a file of
 * 4 EiB), below the largest offset. The byte just below TOKEN_BASE is
 * read-locked by every process counted among a log's waiters.
 */
constexpr std::uint64_t TOKEN_BASE = std::uint64_t{1} << 62;
constexpr std::uint64_t TOKEN_MASK = TOKEN_BASE - 1;
constexpr std::uint64_t WAITING_BYTE = TOKEN_BASE - 1;
/*
 * Read-locked by every process with a log open for writing that has
 * fenced it, or opened it while another such process had it open: while
 * anyone holds it, the log has been fenced since the last crash (a crash
 * ends every holder), and a writable open need not walk it again.
 */
constexpr std::uint64_t FENCED_BYTE = TOKEN_BASE - 2;

/*
 * One process's lock descriptor for one file (by device and inode). The
 * process-only one (no descriptor: Process()) serves words that only
 * this process's threads share, such as a log in a plain buffer.
 */
class LockFile {
public:
    /*
     * The process's lock file for the file device and inode name: a copy
     * of descriptor fd if it is one (open for writing if writable), else
     * path opened again (ENOENT when path leads to another file or none
     * now), unless another channel or log of the process already has one.
     * Only a writable one takes tokens; a read-only one tests them and
     * waits. Returns 0 or an errno value. Each success needs a Release().
     */
    static int Acquire(int fd, const char *path, dev_t device, ino_t inode, bool writable,
	    LockFile *&out) noexcept;
    static LockFile *Process() noexcept;
    void Release() noexcept;

    std::uint64_t Id() const noexcept { return id_; }

    /*
     * This thread's token on this file, taken on first use. 0 with error
     * set when none can be had: ENOLCK when a record lock (fcntl, TclX
     * flock) covers the bytes tokens use.
     */
    std::uint64_t ThreadToken(int &error) noexcept;
    /*
     * Whether token names a holder that lives: 1 yes, 0 no (its thread
     * or process is gone, or no one ever had it), or -errno.
     */
    int TokenAlive(std::uint64_t token) noexcept;

    /* A log's waiters: see Log::Wait. */
    void BeginWaiting() noexcept;
    void EndWaiting() noexcept;
    /* Whether any thread of any process is counted as waiting. */
    bool AnyoneWaiting() noexcept;

    /*
     * A log's fence (see FENCED_BYTE): whether a process that fenced the
     * file since the last crash, or that opened it while one had it
     * open, has it open now (without OFD locks: never known, so false);
     * and count this process among them, for as long as it keeps the
     * descriptor.
     */
    bool FencedByOpener() noexcept;
    void MarkFenced() noexcept;

    LockFile(const LockFile &) = delete;
    LockFile &operator=(const LockFile &) = delete;

private:
    LockFile() noexcept = default;
    ~LockFile() = default;

    struct Registry;
    static Registry &Files() noexcept;
    static void Prepare() noexcept;
    static void Parent() noexcept;
    static void Child() noexcept;
    friend struct ThreadTokens;

    int Lock(short type, std::uint64_t at, bool take) noexcept;

    std::uint64_t id_ = 0;	/* never reused, unlike an address */
    int fd_ = -1;
    bool writable_ = false;
    bool broken_ = false;	/* a forked child could not get its own
				 * description: no lock can be proved */
    dev_t device_ = 0;
    ino_t inode_ = 0;
    int refs_ = 0;
    int waiting_ = 0;		/* this process's counted waiters */
    bool fenced_ = false;	/* this process holds FENCED_BYTE */
    std::vector<std::uint64_t> live_;	/* tokens of this process's live threads */
};

/*
 * The tokens the calling thread holds: the last one used, for the fast
 * path (no system call, no lock), and all of them, released when the
 * thread ends, so that a process whose main thread exits keeps the
 * tokens of its live threads and drops those of its dead ones.
 */
struct CachedToken {
    std::uint64_t fileId;
    std::uint64_t token;
};
inline thread_local CachedToken cachedToken = {0, 0};

struct ThreadTokens {
    std::vector<CachedToken> held;
    ~ThreadTokens();
};
inline thread_local ThreadTokens threadTokens;

struct LockFile::Registry {
    std::mutex mutex;
    std::vector<LockFile *> files;
    std::uint64_t lastId = 0;
    LockFile process;	/* Process() */
};

inline LockFile::Registry &LockFile::Files() noexcept {
    /* Never destroyed: threads may end after static destructors ran. */
    static Registry *registry = [] {
	auto *r = new Registry;
	r->process.id_ = ++r->lastId;
	r->process.refs_ = 1;
	::pthread_atfork(Prepare, Parent, Child);
	return r;
    }();
    return *registry;
}

inline LockFile *LockFile::Process() noexcept {
    return &Files().process;
}

/* A random number from the kernel, or from the clock if it has none. */
inline std::uint64_t RandomBits() noexcept {
    std::uint64_t bits = 0;
#if defined(__linux__) && defined(SYS_getrandom)
    if (::syscall(SYS_getrandom, &bits, sizeof bits, 0) == sizeof bits) {
	return bits;
    }
#endif
    struct timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    static std::atomic<std::uint64_t> counter{0};
    bits = (static_cast<std::uint64_t>(now.tv_nsec) << 32) ^ now.tv_sec
	    ^ (static_cast<std::uint64_t>(::getpid()) << 17) ^ counter.fetch_add(0x9E3779B97F4A7C15u);
    bits ^= bits >> 29;
    bits *= 0xBF58476D1CE4E5B9u;
    return bits ^ (bits >> 32);
}

/* A token's low 31 bits go in the futex half of the word: never all 0. */
constexpr bool TokenUsable(std::uint64_t token) noexcept {
    return (token & 0x7fffffffu) != 0 && token <= TOKEN_MASK;
}

/* A descriptor of the file for the lock file, or -1 with errno set. */
inline int OpenLockDescriptor(int fd, const char *path, dev_t device, ino_t inode,
	bool writable) noexcept {
    const int copy = fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0)
	    : path[0] == '\0' ? (errno = ENOENT, -1)
	    : ::open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (copy < 0) {
	return -1;
    }
    struct stat st;
    if (::fstat(copy, &st) != 0 || st.st_dev != device || st.st_ino != inode) {
	::close(copy);
	errno = ENOENT;
	return -1;
    }
    return copy;
}

inline int LockFile::Acquire(int fd, const char *path, dev_t device, ino_t inode,
	bool writable, LockFile *&out) noexcept {
    Registry &r = Files();
    std::lock_guard<std::mutex> guard(r.mutex);
    for (LockFile *file : r.files) {
	if (file->device_ != device || file->inode_ != inode) {
	    continue;
	}
	if (writable && !file->writable_) {
	    /*
	     * A read-only one holds no tokens, only perhaps the waiting
	     * lock: its description is replaced by a writable one, and the
	     * lock taken again on it.
	     */
	    const int copy = OpenLockDescriptor(fd, path, device, inode, true);
	    if (copy < 0) {
		return errno;
	    }
	    if (::dup3(copy, file->fd_, O_CLOEXEC) < 0) {
		const int error = errno;
		::close(copy);
		return error;
	    }
	    ::close(copy);
	    file->writable_ = true;
	    if (file->waiting_ > 0 && !file->broken_) {
		file->Lock(F_RDLCK, WAITING_BYTE, true);
	    }
	}
	file->refs_++;
	out = file;
	return 0;
    }
    const int copy = OpenLockDescriptor(fd, path, device, inode, writable);
    if (copy < 0) {
	return errno;
    }
    auto *file = new (std::nothrow) LockFile;
    if (file == nullptr) {
	::close(copy);
	return ENOMEM;
    }
    try {
	r.files.push_back(file);
    } catch (const std::bad_alloc &) {
	delete file;
	::close(copy);
	return ENOMEM;
    }
    file->id_ = ++r.lastId;
    file->fd_ = copy;
    file->writable_ = writable;
    file->device_ = device;
    file->inode_ = inode;
    file->refs_ = 1;
    out = file;
    return 0;
}

inline void LockFile::Release() noexcept {
    Registry &r = Files();
    std::lock_guard<std::mutex> guard(r.mutex);
    if (this == &r.process || --refs_ > 0) {
	return;
    }
    r.files.erase(std::find(r.files.begin(), r.files.end(), this));
    if (fd_ >= 0) {
	::close(fd_);	/* drops every token and waiting lock on it */
    }
    delete this;
}

#ifdef MMAP_OFD_LOCKS

/*
 * Take (take) or test for one byte: F_OFD_SETLK with type, or
 * F_OFD_GETLK asking for type. Returns 0 (taken; or: no conflicting
 * lock), EAGAIN (someone else's conflicting lock), or an errno value.
 */
inline int LockFile::Lock(short type, std::uint64_t at, bool take) noexcept {
    struct flock lock = {};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = static_cast<off_t>(at);
    lock.l_len = 1;
    if (::fcntl(fd_, take ? F_OFD_SETLK : F_OFD_GETLK, &lock) != 0) {
	return errno == EACCES ? EAGAIN : errno;
    }
    return take || lock.l_type == F_UNLCK ? 0 : EAGAIN;
}

inline std::uint64_t LockFile::ThreadToken(int &error) noexcept {
    if (cachedToken.fileId == id_) {
	return cachedToken.token;
    }
    for (const CachedToken &held : threadTokens.held) {
	if (held.fileId == id_) {
	    cachedToken = held;
	    return held.token;
	}
    }
    Registry &r = Files();
    std::lock_guard<std::mutex> guard(r.mutex);
    if (broken_) {
	error = ENOLCK;
	return 0;
    }
    try {
	threadTokens.held.reserve(threadTokens.held.size() + 1);
	live_.reserve(live_.size() + 1);
    } catch (const std::bad_alloc &) {
	error = ENOMEM;
	return 0;
    }
    /* Tokens of files closed since: their locks went with the descriptor. */
    threadTokens.held.erase(std::remove_if(threadTokens.held.begin(),
	    threadTokens.held.end(), [&r](const CachedToken &held) {
		return held.fileId != r.process.id_ && std::none_of(r.files.begin(),
			r.files.end(), [&](LockFile *f) { return f->id_ == held.fileId; });
	    }), threadTokens.held.end());
    /*
     * A draw that another live holder has (the kernel says so) is drawn
     * again; so is one of this process's (its locks do not conflict with
     * ours). Many conflicts in a row mean a record lock covers the bytes.
     */
    for (int tries = 0; tries < 16; tries++) {
	const std::uint64_t token = RandomBits() & TOKEN_MASK;
	if (!TokenUsable(token)
		|| std::find(live_.begin(), live_.end(), token) != live_.end()) {
	    continue;
	}
	const int status = fd_ < 0 ? 0 : Lock(F_WRLCK, TOKEN_BASE + token, true);
	if (status == EAGAIN) {
	    continue;
	}
	if (status != 0) {
	    error = status;
	    return 0;
	}
	live_.push_back(token);
	cachedToken = {id_, token};
	threadTokens.held.push_back(cachedToken);
	return token;
    }
    error = ENOLCK;
    return 0;
}

inline int LockFile::TokenAlive(std::uint64_t token) noexcept {
    if (!TokenUsable(token)) {
	return 0;	/* no thread ever had it: a garbled word */
    }
    {
	std::lock_guard<std::mutex> guard(Files().mutex);
	if (std::find(live_.begin(), live_.end(), token) != live_.end()) {
	    return 1;
	}
	if (broken_) {
	    return -ENOLCK;
	}
    }
    if (fd_ < 0) {
	return 0;
    }
    const int status = Lock(F_WRLCK, TOKEN_BASE + token, false);
    return status == 0 ? 0 : status == EAGAIN ? 1 : -status;
}

/*
 * A process counts among a log's waiters only while it read-locks the
 * waiting byte, so that an appender can tell the count of waiters killed
 * while they slept from live ones. Several threads share one lock.
 */
inline void LockFile::BeginWaiting() noexcept {
    std::lock_guard<std::mutex> guard(Files().mutex);
    if (waiting_++ == 0 && fd_ >= 0 && !broken_) {
	Lock(F_RDLCK, WAITING_BYTE, true);
    }
}

inline void LockFile::EndWaiting() noexcept {
    std::lock_guard<std::mutex> guard(Files().mutex);
    if (--waiting_ == 0 && fd_ >= 0 && !broken_) {
	Lock(F_UNLCK, WAITING_BYTE, true);
    }
}

inline bool LockFile::AnyoneWaiting() noexcept {
    {
	std::lock_guard<std::mutex> guard(Files().mutex);
	if (waiting_ > 0 || broken_) {
	    return true;
	}
    }
    return fd_ >= 0 && Lock(F_WRLCK, WAITING_BYTE, false) != 0;
}

inline bool LockFile::FencedByOpener() noexcept {
    {
	std::lock_guard<std::mutex> guard(Files().mutex);
	if (fenced_) {
	    return true;
	}
	if (fd_ < 0 || broken_) {
	    return false;
	}
    }
    return Lock(F_WRLCK, FENCED_BYTE, false) == EAGAIN;
}

inline void LockFile::MarkFenced() noexcept {
    std::lock_guard<std::mutex> guard(Files().mutex);
    if (!fenced_ && fd_ >= 0 && !broken_) {
	fenced_ = Lock(F_RDLCK, FENCED_BYTE, true) == 0;
    }
}

inline ThreadTokens::~ThreadTokens() {
    LockFile::Registry &r = LockFile::Files();
    std::lock_guard<std::mutex> guard(r.mutex);
    for (const CachedToken &mine : held) {
	LockFile *file = mine.fileId == r.process.id_ ? &r.process : nullptr;
	for (LockFile *f : r.files) {
	    if (f->id_ == mine.fileId) {
		file = f;
	    }
	}
	if (file == nullptr) {
	    continue;	/* closed: the lock went with the descriptor */
	}
	file->live_.erase(std::remove(file->live_.begin(), file->live_.end(), mine.token),
		file->live_.end());
	if (file->fd_ >= 0 && !file->broken_) {
	    file->Lock(F_UNLCK, TOKEN_BASE + mine.token, true);
	}
    }
    cachedToken = {0, 0};
}

/*
 * fork: the child shares its parent's open file descriptions, and with
 * them the parent's locks, which would make the parent's live holders
 * look like the child's own (never conflicting) and so dead. The child
 * gives each lock descriptor a description of its own, and its one
 * thread draws new tokens.
 */
inline void LockFile::Prepare() noexcept {
    Files().mutex.lock();
}

inline void LockFile::Parent() noexcept {
    Files().mutex.unlock();
}

inline void LockFile::Child() noexcept {
    Registry &r = Files();
    for (LockFile *file : r.files) {
	file->live_.clear();
	file->waiting_ = 0;
	file->fenced_ = false;	/* the parent's description holds it */
	if (file->fd_ < 0 || file->broken_) {
	    continue;
	}
	char name[40];
	std::snprintf(name, sizeof name, "/proc/thread-self/fd/%d", file->fd_);
	const int fresh = ::open(name, (file->writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC
		| O_NOCTTY | O_NONBLOCK);
	if (fresh < 0 || ::dup3(fresh, file->fd_, O_CLOEXEC) < 0) {
	    file->broken_ = true;
	}
	if (fresh >= 0) {
	    ::close(fresh);
	}
    }
    r.process.live_.clear();
    r.process.waiting_ = 0;
    threadTokens.held.clear();
    cachedToken = {0, 0};
    r.mutex.unlock();
}

#else /* !MMAP_OFD_LOCKS */

/*
 * Without OFD locks a token is the pair (process id, thread number): a
 * thread number in the futex half, the process id in the other.
 */
inline int LockFile::Lock(short, std::uint64_t, bool) noexcept {
    return 0;
}

inline std::uint64_t LockFile::ThreadToken(int &) noexcept {
    if (cachedToken.fileId == 1) {
	return cachedToken.token;
    }
    static std::atomic<std::uint32_t> threadsSeen{0};
    const std::uint64_t thread = (++threadsSeen & 0x7fffffffu) | (threadsSeen == 0);
    cachedToken = {1, (static_cast<std::uint64_t>(::getpid()) << 31) | thread};
    return cachedToken.token;
}

/* A thread that ended in a live process looks alive: see the man page. */
inline int LockFile::TokenAlive(std::uint64_t token) noexcept {
    const auto process = static_cast<pid_t>(token >> 31);
    if (!TokenUsable(token) || process <= 0) {
	return 0;
    }
    return ::kill(process, 0) == 0 || errno == EPERM ? 1 : 0;
}

inline void LockFile::BeginWaiting() noexcept {}
inline void LockFile::EndWaiting() noexcept {}
inline bool LockFile::AnyoneWaiting() noexcept { return true; }
inline bool LockFile::FencedByOpener() noexcept { return false; }
inline void LockFile::MarkFenced() noexcept {}
inline ThreadTokens::~ThreadTokens() {}

/* A forked child has a new process id: its tokens are new. */
inline void LockFile::Prepare() noexcept {}
inline void LockFile::Parent() noexcept {}
inline void LockFile::Child() noexcept {
    cachedToken = {0, 0};
}

#endif /* MMAP_OFD_LOCKS */

} // namespace mmapunix

#endif /* MMAP_OWNER_H */

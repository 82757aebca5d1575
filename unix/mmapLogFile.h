/*
 * mmapLogFile.h --
 *
 *	The POSIX calls behind [mmap::log open]: opening a file by name,
 *	creating one atomically (so that processes racing to create it end up
 *	with one complete file), reading its first bytes, and mapping its
 *	first bytes writable from a second descriptor. Nothing here knows
 *	about Tcl or about the log format; every call reports an errno value
 *	(0 on success).
 *
 * Copyright (c) 2026 the mmap authors. See the file LICENSE for terms.
 */

#ifndef MMAP_LOG_FILE_H
#define MMAP_LOG_FILE_H

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmapUnix.h"

namespace mmapunix {

/*
 * A descriptor opened here, closed when it goes out of scope. A log keeps
 * none once its file is mapped: closing any descriptor of a file drops
 * the process's POSIX record locks on it (see FileIdentity), so one kept
 * open would only defer that to an unexpected moment.
 */
class OwnedFd {
public:
    OwnedFd() noexcept = default;
    OwnedFd(const OwnedFd &) = delete;
    OwnedFd &operator=(const OwnedFd &) = delete;
    ~OwnedFd() { Reset(-1); }

    int get() const noexcept { return fd_; }
    void Reset(int fd) noexcept {
	if (fd_ >= 0) {
	    ::close(fd_);
	}
	fd_ = fd;
    }

private:
    int fd_ = -1;
};

/*
 * open(2) path for reading, or reading and writing, close-on-exec. Not
 * blocking, so that a FIFO opened for reading does not wait for a writer
 * (the caller refuses anything but a regular file, where it changes
 * nothing), and a terminal never becomes the process's controlling one.
 */
inline int OpenFile(const char *path, bool writable, OwnedFd &out) noexcept {
    const int fd = ::open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK
	    | O_NOCTTY);
    if (fd < 0) {
	return errno;
    }
    out.Reset(fd);
    return 0;
}

/*
 * Whether path names something that exists and is not a regular file
 * (following symbolic links). False when it cannot tell: the open that
 * follows reports why.
 */
inline bool NamesNonRegular(const char *path) noexcept {
    struct stat st;
    return ::stat(path, &st) == 0 && !S_ISREG(st.st_mode);
}

namespace detail {

/* Give the new file at fd its size, blocks and first bytes. */
inline int FillNewFile(int fd, std::uint64_t size, const unsigned char *head,
	std::size_t count) noexcept {
    int error = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (error == EOPNOTSUPP || error == EINVAL) {
	error = 0;	/* a file system without allocation: holes it is */
    }
    /* Durable before it has a name: a power loss must not leave a name
     * for a file of the wrong size or with no header. */
    if (error == 0 && (::ftruncate(fd, static_cast<off_t>(size)) != 0
	    || ::pwrite(fd, head, count, 0) != static_cast<ssize_t>(count)
	    || ::fsync(fd) != 0)) {
	error = errno != 0 ? errno : EIO;
    }
    return error;
}

/*
 * Make the new name in directory dir durable, so that a log whose
 * records were synced does not vanish with its directory entry in a
 * power loss. A file system that cannot sync a directory (EINVAL) keeps
 * its entries by its own means.
 */
inline int SyncDirectory(const std::string &dir) noexcept {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
	return errno;
    }
    const int error = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    ::close(fd);
    return error;
}

} // namespace detail

/*
 * Create path as a file of size bytes that starts with the count bytes
 * at head, atomically: the file is made without a name, or under a
 * temporary one, in the same directory and linked into place, so no
 * process ever sees it half made. Its blocks are allocated now where the
 * file system can, so that writes through a mapping cannot meet a full
 * disk later. Returns 0, EEXIST when path already exists (another
 * process may have just made it), or another errno value; a temporary
 * name is gone either way.
 *
 * On Linux the file is made nameless (O_TMPFILE) and linked through
 * /proc/self/fd, so any name the directory can hold works. Elsewhere, or
 * where the file system or /proc lacks that, the temporary name is short
 * and independent of path's last component, so that it too fits any
 * directory that can hold path.
 */
inline int CreateFileAtomically(const std::string &path, std::uint64_t size,
	const unsigned char *head, std::size_t count) noexcept {
    static std::atomic<unsigned long> attempt{0};
    std::string temp;
    OwnedFd fd;
    std::string dir;
    try {
	const std::size_t slash = path.rfind('/');
	dir = slash == std::string::npos ? std::string(".")
		: slash == 0 ? std::string("/") : path.substr(0, slash);
#if defined(__linux__) && defined(O_TMPFILE)
	fd.Reset(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0666));
	if (fd.get() >= 0) {
	    if (const int error = detail::FillNewFile(fd.get(), size, head, count)) {
		return error;
	    }
	    char link[32];
	    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
	    if (::linkat(AT_FDCWD, link, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
		return detail::SyncDirectory(dir);
	    }
	    /* ENOENT: no /proc to link through; try a name instead. */
	    if (errno != ENOENT) {
		return errno;
	    }
	    fd.Reset(-1);
	}
#endif
	const std::string prefix = slash == std::string::npos ? std::string()
		: path.substr(0, slash + 1);
	while (fd.get() < 0) {
	    temp = prefix + ".mmaplog-" + std::to_string(::getpid()) + "-"
		    + std::to_string(attempt.fetch_add(1));
	    const int made = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	    if (made < 0 && errno != EEXIST) {
		return errno;
	    }
	    fd.Reset(made);
	}
    } catch (const std::bad_alloc &) {
	return ENOMEM;
    }
    int error = detail::FillNewFile(fd.get(), size, head, count);
    if (error == 0 && ::link(temp.c_str(), path.c_str()) != 0) {
	error = errno;
    }
    ::unlink(temp.c_str());
    return error != 0 ? error : detail::SyncDirectory(dir);
}

/* pread(2) up to count bytes from offset 0; got says how many came. */
inline int ReadStart(int fd, void *buffer, std::size_t count, std::size_t &got) noexcept {
    const ssize_t n = ::pread(fd, buffer, count, 0);
    if (n < 0) {
	return errno;
    }
    got = static_cast<std::size_t>(n);
    return 0;
}

/*
 * Map the first length bytes of the file path names, shared and
 * writable, provided it is still the file same remembers. ENOENT when it
 * is another file now.
 */
inline int MapStartWritable(const char *path, const FileIdentity &same, std::size_t length,
	Mapping &out) noexcept {
    OwnedFd fd;
    FileInfo now;
    int error = OpenFile(path, true, fd);
    if (error == 0) {
	error = DescribeFd(fd.get(), now);
    }
    if (error == 0 && !same.Is(now.device, now.inode)) {
	error = ENOENT;
    }
    return error != 0 ? error : Mapping::Create(fd.get(), 0, length, true, true, out);
}

} // namespace mmapunix

#endif /* MMAP_LOG_FILE_H */

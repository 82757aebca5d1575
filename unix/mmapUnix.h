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

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <fcntl.h>
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
	const long pageSize = ::sysconf(_SC_PAGESIZE);
	const std::uint64_t page =
		pageSize > 0 ? static_cast<std::uint64_t>(pageSize) : 4096;
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

    /*
     * Write dirty pages of a shared writable mapping to the file and wait
     * for the disk. Private and read-only mappings have nothing to write.
     */
    int Sync() const noexcept {
	if (base_ == nullptr || !writableShared_) {
	    return 0;
	}
	return ::msync(base_, mappedSize_, MS_SYNC) == 0 ? 0 : errno;
    }

    /* Sync, then unmap. Returns the first errno seen, or 0. */
    int Close() noexcept {
	const int syncError = Sync();
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

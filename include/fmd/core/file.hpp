#pragma once
// Whole-file reads and durable atomic writes, shared by every file format of the library
// (checkpoints, IDX, reflow pairs).
//
// write_file_atomic(path, bytes): the bytes go to a new temporary file in the target's directory,
// created exclusively under a unique name (O_CREAT | O_EXCL: an existing file or a planted
// symlink is never opened, let alone followed), are fsync'ed, and the file is renamed over
// `path`; then the directory is fsync'ed, so after a crash or a power loss `path` holds either
// the old content or the new one, never a torn file. Concurrent writers to one path each write
// their own temporary file: the last rename wins and readers always see one writer's whole file.
// A symlink at `path` itself is replaced by the new file (its target is left alone).
// A new file gets mode 0666 & ~umask; an existing file keeps its mode.
//
// On systems without POSIX file calls the same steps run through the standard library, without
// the fsyncs (crash-safe, not power-loss-safe).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#define FMD_POSIX_FILES 1
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <fmd/core/error.hpp>

namespace fmd::detail {

/// Reads the whole regular file at `path`; io_error naming `argument` when it cannot. Allocates at
/// most the file's size (plus one read chunk when the file grows while being read).
inline std::vector<char> read_file(const std::string& path, std::string_view where, std::string_view argument = "path") {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status))
        fail_io(where, argument, "cannot open '", path, "': ", ec ? ec.message() : std::string("no such file"));
    if (!std::filesystem::is_regular_file(status)) fail_io(where, argument, "'", path, "' is not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) fail_io(where, argument, "cannot open '", path, "': ", std::strerror(errno));
    std::vector<char> bytes;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec) bytes.reserve(static_cast<std::size_t>(size));
    char chunk[1 << 16];
    for (;;) {
        const std::size_t got = std::fread(chunk, 1, sizeof chunk, f);
        bytes.insert(bytes.end(), chunk, chunk + got);
        if (got < sizeof chunk) break;
    }
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) fail_io(where, argument, "reading '", path, "' failed");
    return bytes;
}

#ifdef FMD_POSIX_FILES
namespace file_impl {
inline mode_t new_file_mode() {
    // The process umask, read without changing it (umask() is a set-and-get, racy with other threads).
    mode_t mask = 022;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::strncmp(line, "Umask:", 6) == 0) {
                mask = static_cast<mode_t>(std::strtoul(line + 6, nullptr, 8));
                break;
            }
        std::fclose(f);
    }
    return static_cast<mode_t>(0666 & ~mask);
}

inline bool write_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}
}  // namespace file_impl
#endif

/// Writes `bytes` to `path` atomically and durably (see the header comment); io_error naming
/// `argument` on any failure, in which case `path` is unchanged and no temporary file remains.
inline void write_file_atomic(const std::string& path, std::span<const char> bytes, std::string_view where,
                              std::string_view argument = "path") {
    namespace fs = std::filesystem;
    const fs::path target(path);
    if (path.empty() || !target.has_filename()) fail(where, argument, "must name a file, got '", path, "'");
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
#ifdef FMD_POSIX_FILES
    std::string tmp = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    const int fd = ::mkstemp(tmp.data());  // O_CREAT | O_EXCL, mode 0600
    if (fd < 0) fail_io(where, argument, "cannot create a temporary file next to '", path, "': ", std::strerror(errno));
    auto abort_with = [&](const char* what) {
        const int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        fail_io(where, argument, what, " '", path, "': ", std::strerror(e));
    };
    struct stat existing {};
    const mode_t mode = ::stat(path.c_str(), &existing) == 0 ? (existing.st_mode & 07777) : file_impl::new_file_mode();
    if (::fchmod(fd, mode) != 0) abort_with("cannot set the mode of the temporary file for");
    if (!file_impl::write_all(fd, bytes.data(), bytes.size())) abort_with("writing");
    if (::fsync(fd) != 0) abort_with("flushing (fsync)");
    if (::close(fd) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        fail_io(where, argument, "closing the temporary file for '", path, "': ", std::strerror(e));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        fail_io(where, argument, "cannot rename the temporary file to '", path, "': ", std::strerror(e));
    }
    // The rename is durable only once the directory entry is.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        const int r = ::fsync(dfd);
        const int e = errno;
        ::close(dfd);
        if (r != 0 && e != EINVAL) fail_io(where, argument, "flushing the directory of '", path, "' (fsync): ", std::strerror(e));
    }
#else
    std::random_device entropy;
    const std::string tmp = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(entropy()))).string();
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) fail_io(where, argument, "cannot create a temporary file next to '", path, "'");
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        f.flush();
        if (!f) {
            f.close();
            std::remove(tmp.c_str());
            fail_io(where, argument, "writing '", path, "' failed");
        }
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) {
        std::remove(tmp.c_str());
        fail_io(where, argument, "cannot rename the temporary file to '", path, "': ", ec.message());
    }
#endif
}

}  // namespace fmd::detail

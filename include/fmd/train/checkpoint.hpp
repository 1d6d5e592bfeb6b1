#pragma once
// Checkpoint file format (version 1), little-endian as written by this machine:
//
//   offset  field
//   0       magic "FMDCKPT1" (8 bytes)
//   8       u32 format version (1)
//   12      u32 scalar size in bytes (4 = float, 8 = double)
//   16      u64 length L, then L bytes: architecture description (text)
//   ...     u64 parameter count P, then P scalars: parameters
//   ...     u64 number of optimizer state vectors V; each: u64 length, then scalars
//   ...     u64 optimizer step count
//   ...     u64 number of extra vectors E (e.g. the EMA weights); each: u64 length, then scalars
//   ...     u64 training step
//   ...     u64 length R, then R bytes: generator state (text form of the std engine)
//   end−8   u64 FNV-1a 64-bit hash of every byte before it
//
// save_checkpoint writes "<path>.tmp" and renames it over <path>, so a crash leaves either the old
// file or the new one. load_checkpoint validates everything (size, magic, version, scalar type,
// checksum) before returning; it never touches a model, so a failed load leaves the model as it was.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <ios>
#include <iterator>
#include <string>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

namespace fmd::train {

template <class S>
struct Checkpoint {
    std::string architecture;               ///< the network's description; must match on restore
    Vector<S> parameters;                   ///< the contiguous parameter buffer
    std::vector<Vector<S>> optimizer_state;  ///< e.g. Adam's m and v
    std::uint64_t optimizer_step = 0;
    std::vector<Vector<S>> extra;           ///< e.g. EMA weights
    std::uint64_t step = 0;                 ///< training steps done
    std::string rng_state;                  ///< `os << engine` text
};

namespace ckpt {
inline constexpr char checkpoint_magic[8] = {'F', 'M', 'D', 'C', 'K', 'P', 'T', '1'};
inline constexpr std::uint32_t checkpoint_version = 1;

inline std::uint64_t fnv1a(const char* data, std::size_t n) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 1099511628211ull;
    }
    return h;
}

class Writer {
public:
    template <class T>
    void pod(const T& v) {
        const char* p = reinterpret_cast<const char*>(&v);
        buf_.insert(buf_.end(), p, p + sizeof(T));
    }
    void bytes(const std::string& s) {
        pod(static_cast<std::uint64_t>(s.size()));
        buf_.insert(buf_.end(), s.begin(), s.end());
    }
    template <class S>
    void vec(const Vector<S>& v) {
        pod(static_cast<std::uint64_t>(v.size()));
        const char* p = reinterpret_cast<const char*>(v.data());
        buf_.insert(buf_.end(), p, p + sizeof(S) * static_cast<std::size_t>(v.size()));
    }
    std::vector<char>& buffer() { return buf_; }

private:
    std::vector<char> buf_;
};

class Reader {
public:
    Reader(const std::vector<char>& b, std::size_t end, const std::string& path) : b_(b), end_(end), path_(path) {}
    template <class T>
    T pod() {
        need(sizeof(T));
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string bytes() {
        const auto n = length(1);
        std::string s(b_.data() + pos_, n);
        pos_ += n;
        return s;
    }
    template <class S>
    Vector<S> vec() {
        const auto n = length(sizeof(S));
        Vector<S> v(static_cast<Eigen::Index>(n));
        if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(S));  // an empty Vector's data() is null
        pos_ += n * sizeof(S);
        return v;
    }
    std::size_t position() const { return pos_; }

private:
    std::size_t length(std::size_t unit) {
        const auto n = pod<std::uint64_t>();
        if (n > (end_ - pos_) / unit) fmd::detail::fail("load_checkpoint", "path", "'", path_, "' is corrupted: a length field (", n, ") runs past the end of the file");
        return static_cast<std::size_t>(n);
    }
    void need(std::size_t n) {
        if (end_ - pos_ < n) fmd::detail::fail("load_checkpoint", "path", "'", path_, "' is truncated");
    }
    const std::vector<char>& b_;
    std::size_t end_, pos_ = 0;
    const std::string& path_;
};
}  // namespace ckpt

/// Writes a checkpoint atomically (temporary file, then rename).
template <class S>
void save_checkpoint(const std::string& path, const Checkpoint<S>& c) {
    ckpt::Writer w;
    for (char ch : ckpt::checkpoint_magic) w.pod(ch);
    w.pod(ckpt::checkpoint_version);
    w.pod(static_cast<std::uint32_t>(sizeof(S)));
    w.bytes(c.architecture);
    w.vec(c.parameters);
    w.pod(static_cast<std::uint64_t>(c.optimizer_state.size()));
    for (const auto& v : c.optimizer_state) w.vec(v);
    w.pod(c.optimizer_step);
    w.pod(static_cast<std::uint64_t>(c.extra.size()));
    for (const auto& v : c.extra) w.vec(v);
    w.pod(c.step);
    w.bytes(c.rng_state);
    w.pod(ckpt::fnv1a(w.buffer().data(), w.buffer().size()));

    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) fmd::detail::fail("save_checkpoint", "path", "cannot open '", tmp, "' for writing");
        f.write(w.buffer().data(), static_cast<std::streamsize>(w.buffer().size()));
        f.flush();
        if (!f) {
            std::remove(tmp.c_str());
            fmd::detail::fail("save_checkpoint", "path", "writing '", tmp, "' failed");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        fmd::detail::fail("save_checkpoint", "path", "cannot rename '", tmp, "' to '", path, "'");
    }
}

/// Reads and validates a checkpoint written with scalar type S.
template <class S>
Checkpoint<S> load_checkpoint(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fmd::detail::fail("load_checkpoint", "path", "cannot open '", path, "'");
    std::vector<char> b;
    try {  // libstdc++'s filebuf throws on read errors (e.g. EISDIR for a directory) whatever the stream's exception mask
        b.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    } catch (const std::ios_base::failure& e) {
        fmd::detail::fail("load_checkpoint", "path", "cannot read '", path, "': ", e.what());
    }
    constexpr std::size_t header = 8 + 4 + 4;
    if (b.size() < header + 8) fmd::detail::fail("load_checkpoint", "path", "'", path, "' is truncated (", b.size(), " bytes)");
    if (std::memcmp(b.data(), ckpt::checkpoint_magic, 8) != 0) fmd::detail::fail("load_checkpoint", "path", "'", path, "' is not an fmd checkpoint (bad magic)");
    const std::size_t body = b.size() - 8;
    std::uint64_t stored;
    std::memcpy(&stored, b.data() + body, 8);
    ckpt::Reader r(b, body, path);
    for (int i = 0; i < 8; ++i) r.pod<char>();
    const auto version = r.pod<std::uint32_t>();
    if (version != ckpt::checkpoint_version) fmd::detail::fail("load_checkpoint", "path", "'", path, "' has format version ", version, ", this build reads ", ckpt::checkpoint_version);
    const auto scalar = r.pod<std::uint32_t>();
    if (stored != ckpt::fnv1a(b.data(), body)) fmd::detail::fail("load_checkpoint", "path", "'", path, "' is corrupted or truncated (checksum mismatch)");
    if (scalar != sizeof(S)) fmd::detail::fail("load_checkpoint", "path", "'", path, "' holds ", scalar * 8, "-bit scalars, expected ", sizeof(S) * 8, "-bit");
    Checkpoint<S> c;
    c.architecture = r.bytes();
    c.parameters = r.template vec<S>();
    auto vectors = [&](std::vector<Vector<S>>& out) {
        const auto n = r.pod<std::uint64_t>();
        if (n > body / 8) fmd::detail::fail("load_checkpoint", "path", "'", path, "' is corrupted: ", n, " state vectors");
        for (std::uint64_t i = 0; i < n; ++i) out.push_back(r.template vec<S>());
    };
    vectors(c.optimizer_state);
    c.optimizer_step = r.pod<std::uint64_t>();
    vectors(c.extra);
    c.step = r.pod<std::uint64_t>();
    c.rng_state = r.bytes();
    if (r.position() != body) fmd::detail::fail("load_checkpoint", "path", "'", path, "' has ", body - r.position(), " unexpected trailing bytes");
    return c;
}

}  // namespace fmd::train

#pragma once
// Checkpoint file format (version 2), little-endian as written by this machine:
//
//   offset  field
//   0       magic "FMDCKPT1" (8 bytes)
//   8       u32 format version (2; version 1 files, without the optimizer field, are still read)
//   12      u32 scalar size in bytes (4 = float, 8 = double)
//   16      u64 length L, then L bytes: architecture description (text)
//   ...     u64 length O, then O bytes: optimizer description (text; version 2 only)
//   ...     u64 parameter count P, then P scalars: parameters
//   ...     u64 number of optimizer state vectors V; each: u64 length, then scalars
//   ...     u64 optimizer step count
//   ...     u64 number of extra vectors E (e.g. the EMA weights); each: u64 length, then scalars
//   ...     u64 training step
//   ...     u64 length R, then R bytes: generator state (text form of the std engine)
//   end−8   u64 FNV-1a 64-bit hash of every byte before it
//
// save_checkpoint refuses a checkpoint holding a non-finite number (fmd::numerical_error) and
// writes durably and atomically (core/file.hpp): after a crash or power loss the file holds the
// old checkpoint or the new one. load_checkpoint / parse_checkpoint validate everything (size,
// magic, version, scalar type, checksum, lengths, finite numbers, step counts below 2^63) before
// returning and never touch a model, so a failed load leaves the model as it was; format errors
// are fmd::io_error naming 'path' (or the name given to parse_checkpoint).
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/file.hpp>
#include <fmd/core/types.hpp>

namespace fmd::train {

/// Everything a training run needs to continue bit-identically (docs/architecture.md
/// "Reproducibility"); written by save_checkpoint / serialize_checkpoint, read by
/// load_checkpoint / parse_checkpoint.
template <class S>
struct Checkpoint {
    std::string architecture;               ///< the network's description; must match on restore
    std::string optimizer;                  ///< the optimizer's kind (e.g. "nn::AdamW"); must match on restore when both are known
    Vector<S> parameters;                   ///< the contiguous parameter buffer
    std::vector<Vector<S>> optimizer_state;  ///< e.g. Adam's m and v
    std::uint64_t optimizer_step = 0;       ///< the optimizer's own step count
    std::vector<Vector<S>> extra;           ///< e.g. EMA weights
    std::uint64_t step = 0;                 ///< training steps done
    std::string rng_state;                  ///< `os << engine` text
};

namespace ckpt {
inline constexpr char checkpoint_magic[8] = {'F', 'M', 'D', 'C', 'K', 'P', 'T', '1'};  ///< first bytes of a checkpoint file
inline constexpr std::uint32_t checkpoint_version = 2;  ///< format version written (version 1 is still read)
/// Largest step count a checkpoint may hold (2^63 − 1: steps are std::int64_t in the trainer).
inline constexpr std::uint64_t max_step = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// 64-bit FNV-1a hash of n bytes: the checksum at the end of checkpoint and pair files.
inline std::uint64_t fnv1a(const char* data, std::size_t n) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 1099511628211ull;
    }
    return h;
}

/// Appends little pieces of the format to a byte buffer.
class Writer {
public:
    /// Appends the bytes of a trivially copyable value.
    template <class T>
    void pod(const T& v) {
        const char* p = reinterpret_cast<const char*>(&v);
        buf_.insert(buf_.end(), p, p + sizeof(T));
    }
    /// Appends a length (uint64) and the bytes of s.
    void bytes(const std::string& s) {
        pod(static_cast<std::uint64_t>(s.size()));
        buf_.insert(buf_.end(), s.begin(), s.end());
    }
    /// Appends a length (uint64) and the entries of v.
    template <class S>
    void vec(const Vector<S>& v) {
        pod(static_cast<std::uint64_t>(v.size()));
        const char* p = reinterpret_cast<const char*>(v.data());
        buf_.insert(buf_.end(), p, p + sizeof(S) * static_cast<std::size_t>(v.size()));
    }
    std::vector<char>& buffer() { return buf_; }  ///< the bytes written so far

private:
    std::vector<char> buf_;
};

/// Bounds-checked reads from a byte range; every length is checked against the bytes left
/// before anything is allocated.
class Reader {
public:
    /// Reads from b; errors name the function `where` and the argument `name`.
    Reader(std::span<const char> b, std::string_view where, std::string_view name) : b_(b), where_(where), name_(name) {}
    /// Reads a trivially copyable value; fmd::io_error when truncated.
    template <class T>
    T pod() {
        need(sizeof(T));
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    /// Reads a length-prefixed string; fmd::io_error when the length runs past the end.
    std::string bytes() {
        const auto n = length(1);
        std::string s(b_.data() + pos_, n);
        pos_ += n;
        return s;
    }
    /// Reads a length-prefixed vector; fmd::io_error when truncated or non-finite (naming `what`).
    template <class S>
    Vector<S> vec(const char* what) {
        const auto n = length(sizeof(S));
        Vector<S> v(static_cast<Eigen::Index>(n));
        if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(S));  // an empty Vector's data() is null
        pos_ += n * sizeof(S);
        if (!v.allFinite()) fail("holds non-finite ", what, " (NaN or Inf)");
        return v;
    }
    /// Reads an entry count, checked to fit in the bytes left at `min_bytes_each` bytes per entry.
    std::uint64_t count(std::size_t min_bytes_each) {
        const auto n = pod<std::uint64_t>();
        if (n > (b_.size() - pos_) / min_bytes_each) fail("is corrupted: ", n, " entries cannot fit in the bytes left");
        return n;
    }
    std::size_t position() const { return pos_; }  ///< bytes read so far
    /// Throws fmd::io_error naming the function, the argument and the file, then `parts`.
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        fmd::detail::fail_io(where_, name_, "'", file_, "' ", parts...);
    }
    void set_file(std::string_view file) { file_ = file; }  ///< the file name quoted in errors

private:
    std::size_t length(std::size_t unit) {
        const auto n = pod<std::uint64_t>();
        if (n > (b_.size() - pos_) / unit) fail("is corrupted: a length field (", n, ") runs past the end of the file");
        return static_cast<std::size_t>(n);
    }
    void need(std::size_t n) {
        if (b_.size() - pos_ < n) fail("is truncated");
    }
    std::span<const char> b_;
    std::string_view where_, name_, file_;
    std::size_t pos_ = 0;
};

/// Throws fmd::numerical_error naming 'checkpoint' when c holds a NaN or Inf (parameters, optimizer
/// state or extra state).
template <class S>
void require_finite_checkpoint(const Checkpoint<S>& c, std::string_view where) {
    auto check = [&](const Vector<S>& v, const char* what) {
        if (!v.allFinite()) fmd::detail::fail_numerical(where, "checkpoint", "holds non-finite ", what, " (NaN or Inf): refusing to write it");
    };
    check(c.parameters, "parameters");
    for (const auto& v : c.optimizer_state) check(v, "optimizer state");
    for (const auto& v : c.extra) check(v, "extra state (EMA weights)");
}

/// Parses checkpoint bytes; `where`/`argument` name the caller in errors, `file` the file shown.
template <class S>
Checkpoint<S> parse(std::span<const char> b, std::string_view where, std::string_view argument, std::string_view file) {
    Reader r({}, where, argument);
    r.set_file(file);
    constexpr std::size_t header = 8 + 4 + 4;
    if (b.size() < header + 8) r.fail("is truncated (", b.size(), " bytes)");
    if (std::memcmp(b.data(), checkpoint_magic, 8) != 0) r.fail("is not an fmd checkpoint (bad magic)");
    const std::size_t body = b.size() - 8;
    std::uint64_t stored;
    std::memcpy(&stored, b.data() + body, 8);
    r = Reader(b.first(body), where, argument);
    r.set_file(file);
    for (int i = 0; i < 8; ++i) r.pod<char>();
    const auto version = r.pod<std::uint32_t>();
    if (version != 1 && version != checkpoint_version) r.fail("has format version ", version, ", this build reads 1 and ", checkpoint_version);
    const auto scalar = r.pod<std::uint32_t>();
    if (stored != fnv1a(b.data(), body)) r.fail("is corrupted or truncated (checksum mismatch)");
    if (scalar != sizeof(S)) r.fail("holds ", scalar * 8, "-bit scalars, expected ", sizeof(S) * 8, "-bit");
    Checkpoint<S> c;
    c.architecture = r.bytes();
    if (version >= 2) c.optimizer = r.bytes();
    c.parameters = r.template vec<S>("parameters");
    auto vectors = [&](std::vector<Vector<S>>& out, const char* what) {
        const auto n = r.count(8);
        for (std::uint64_t i = 0; i < n; ++i) out.push_back(r.template vec<S>(what));
    };
    vectors(c.optimizer_state, "optimizer state");
    c.optimizer_step = r.pod<std::uint64_t>();
    vectors(c.extra, "extra state (EMA weights)");
    c.step = r.pod<std::uint64_t>();
    c.rng_state = r.bytes();
    if (r.position() != body) r.fail("has ", body - r.position(), " unexpected trailing bytes");
    if (c.step > max_step || c.optimizer_step > max_step) r.fail("holds a step count above 2^63 - 1");
    return c;
}
}  // namespace ckpt

/// The bytes of a checkpoint file (the format above).
template <class S>
std::vector<char> serialize_checkpoint(const Checkpoint<S>& c) {
    ckpt::Writer w;
    for (char ch : ckpt::checkpoint_magic) w.pod(ch);
    w.pod(ckpt::checkpoint_version);
    w.pod(static_cast<std::uint32_t>(sizeof(S)));
    w.bytes(c.architecture);
    w.bytes(c.optimizer);
    w.vec(c.parameters);
    w.pod(static_cast<std::uint64_t>(c.optimizer_state.size()));
    for (const auto& v : c.optimizer_state) w.vec(v);
    w.pod(c.optimizer_step);
    w.pod(static_cast<std::uint64_t>(c.extra.size()));
    for (const auto& v : c.extra) w.vec(v);
    w.pod(c.step);
    w.bytes(c.rng_state);
    w.pod(ckpt::fnv1a(w.buffer().data(), w.buffer().size()));
    return std::move(w.buffer());
}

/// Parses checkpoint bytes held in memory (what load_checkpoint does after reading the file);
/// errors are fmd::io_error naming `name`.
template <class S>
Checkpoint<S> parse_checkpoint(std::span<const char> bytes, std::string_view name = "bytes") {
    return ckpt::parse<S>(bytes, "parse_checkpoint", name, name);
}

/// Writes a checkpoint durably and atomically; refuses non-finite numbers (fmd::numerical_error
/// naming 'checkpoint') and leaves the previous file in place then.
template <class S>
void save_checkpoint(const std::string& path, const Checkpoint<S>& c) {
    ckpt::require_finite_checkpoint(c, "save_checkpoint");
    const std::vector<char> bytes = serialize_checkpoint(c);
    fmd::detail::write_file_atomic(path, bytes, "save_checkpoint");
}

/// Reads and validates a checkpoint written with scalar type S.
template <class S>
Checkpoint<S> load_checkpoint(const std::string& path) {
    const std::vector<char> b = fmd::detail::read_file(path, "load_checkpoint");
    return ckpt::parse<S>(b, "load_checkpoint", "path", path);
}

}  // namespace fmd::train

#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed (zlib; link the fmd::io
// target, which adds it). Not in fmd.hpp: include <fmd/data/idx.hpp> where needed.
//
//   offset  field
//   0       0x00 0x00                      magic, first half
//   2       u8 element type                 0x08 = unsigned byte (the only type read here)
//   3       u8 number of dimensions r ≥ 1
//   4       r × big-endian u32 sizes        e.g. [60000, 28, 28] for images, [60000] for labels
//   4 + 4r  Π sizes elements, row-major     (last index fastest)
//
// Images become a (rows·cols) x n matrix, one flattened image per column (row-major inside the
// image: pixel (r, c) at row r·cols + c), the batch layout of docs/architecture.md. Pixel scaling:
// PixelScale::symmetric (default) maps byte v to v/127.5 − 1 ∈ [−1, 1] (data symmetric around 0,
// like the N(0, I) source); PixelScale::unit maps it to v/255 ∈ [0, 1].
//
//   auto train = fmd::data::load_idx<float>("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
//   train.images (784 x 60000), train.labels (60000 ints), train.rows = train.cols = 28
//
// Reading is bounded: the header is parsed first and its element count (checked for overflow)
// must agree with the file before the data is allocated. A plain file must hold exactly that many
// bytes; a gzip stream is inflated only up to that many bytes (a stream that inflates to more is
// rejected as soon as it does, so a decompression bomb costs no more than the header promises)
// and must end with a valid gzip trailer (CRC-32 and length), with nothing after it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include <fmd/core/error.hpp>
#include <fmd/core/file.hpp>
#include <fmd/core/types.hpp>

namespace fmd::data {

/// The raw content of an IDX file of unsigned bytes: sizes per dimension and the elements.
struct IdxArray {
    std::vector<std::uint32_t> dims;  ///< size per dimension, outermost first
    std::vector<std::uint8_t> data;  ///< Π dims bytes, row-major
    /// Π dims; throws fmd::invalid_argument naming 'dims' when the product overflows size_t.
    std::size_t count() const {
        std::size_t n = 1;
        for (auto d : dims)
            if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d)
                detail::fail("data::IdxArray::count", "dims", "have a product that overflows size_t");
            else
                n *= d;
        return n;
    }
};

/// How load_idx maps a byte v ∈ [0, 255] to a pixel value.
enum class PixelScale {
    symmetric,  ///< v/127.5 − 1 ∈ [−1, 1]
    unit,       ///< v/255 ∈ [0, 1]
};

namespace idx_impl {
inline std::string hex_byte(std::uint8_t v) {
    constexpr char digits[] = "0123456789abcdef";
    return {'0', 'x', digits[v >> 4], digits[v & 15]};
}

/// Largest expansion of deflate (RFC 1951: a stored-length-258 match per 2 bits, ~1032:1) with
/// slack for the gzip wrapper: a gzip file of n bytes cannot inflate to more than this.
inline std::size_t max_inflated(std::size_t compressed) {
    const std::size_t cap = std::numeric_limits<std::size_t>::max() / 1040;
    return std::min(compressed, cap) * 1040 + 1024;
}

/// The checks shared by plain and gzip input. `fail(parts...)` throws the caller's io_error.
struct Parser {
    std::string_view where, argument, file;
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        fmd::detail::fail_io(where, argument, "'", file, "' ", parts...);
    }
    /// Header length 4 + 4r from the first 4 bytes (after checking the magic and element type).
    std::size_t header_size(std::span<const std::uint8_t> b) const {
        if (b.size() < 4) fail("is truncated: ", b.size(), " bytes, an IDX header needs at least 4");
        if (b[0] != 0 || b[1] != 0)
            fail("is not an IDX file (bad magic number: first bytes ", hex_byte(b[0]), " ", hex_byte(b[1]), ", expected 0x00 0x00)");
        if (b[2] != 0x08) fail("has IDX element type ", hex_byte(b[2]), ", only 0x08 (unsigned byte) is supported");
        if (b[3] < 1) fail("is not an IDX file (bad magic number: 0 dimensions)");
        return 4 + 4 * static_cast<std::size_t>(b[3]);
    }
    /// Dimensions and element count of a complete header.
    IdxArray dims(std::span<const std::uint8_t> header, std::size_t& count) const {
        IdxArray a;
        count = 1;
        for (std::size_t p = 4; p + 4 <= header.size(); p += 4) {
            const std::uint32_t d = (std::uint32_t(header[p]) << 24) | (std::uint32_t(header[p + 1]) << 16) |
                                    (std::uint32_t(header[p + 2]) << 8) | std::uint32_t(header[p + 3]);
            if (d != 0 && count > std::numeric_limits<std::size_t>::max() / d) fail("has dimensions whose product overflows (corrupted header)");
            count *= d;
            a.dims.push_back(d);
        }
        return a;
    }
};

inline IdxArray parse_plain(std::span<const std::uint8_t> b, const Parser& p) {
    const std::size_t header = p.header_size(b);
    if (b.size() < header) p.fail("is truncated: the header needs ", header, " bytes, the file has ", b.size());
    std::size_t want = 0;
    IdxArray a = p.dims(b.first(header), want);
    const std::size_t have = b.size() - header;
    if (have < want) p.fail("is truncated: the header promises ", want, " bytes of data, the file holds ", have);
    if (have > want) p.fail("has ", have - want, " unexpected trailing bytes after ", want, " bytes of data");
    a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
    return a;
}

/// Inflates one gzip member, growing the output only as data arrives and never past what the
/// header allows; requires the trailer (zlib checks CRC-32 and length) and no bytes after it.
inline IdxArray parse_gzip(std::span<const std::uint8_t> b, const Parser& p) {
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) p.fail("cannot be inflated (zlib initialisation failed)");
    struct Guard {
        z_stream* z;
        ~Guard() { inflateEnd(z); }
    } guard{&z};
    z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(b.data()));  // zlib's API is not const-correct
    std::size_t left = b.size();
    // One inflate call into [dst, dst + room); returns the bytes produced.
    auto inflate_into = [&](std::uint8_t* dst, std::size_t room, int& rc) {
        z.next_out = dst;
        z.avail_out = static_cast<uInt>(std::min<std::size_t>(room, std::numeric_limits<uInt>::max()));
        const uInt out_before = z.avail_out;
        const uInt in = static_cast<uInt>(std::min<std::size_t>(left, std::numeric_limits<uInt>::max()));
        z.avail_in = in;
        rc = inflate(&z, Z_NO_FLUSH);
        left -= in - z.avail_in;
        if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR)
            p.fail("is corrupted (zlib: ", z.msg ? z.msg : "error", ")");
        const std::size_t produced = out_before - z.avail_out;
        if (rc != Z_STREAM_END && produced == 0 && left == 0) p.fail("is truncated (the gzip stream ends early)");
        return produced;
    };

    enum { magic, header, data, done } stage = magic;
    std::vector<std::uint8_t> out;
    std::size_t limit = 4, header_bytes = 0, want = 0, filled = 0;
    IdxArray a;
    auto read_dims = [&] {  // the header is complete: its promise must fit what the file can inflate to
        IdxArray dims = p.dims(std::span<const std::uint8_t>(out).first(header_bytes), want);
        if (want > max_inflated(b.size())) p.fail("claims ", want, " bytes of data, more than a gzip file of ", b.size(), " bytes can hold");
        return dims;
    };
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (filled == limit && stage == magic) {
            header_bytes = p.header_size(out);
            limit = header_bytes;
            stage = header;
        } else if (filled == limit && stage == header) {
            a = read_dims();
            limit = header_bytes + want;
            stage = data;
        }
        if (filled == limit && stage == data) stage = done;
        if (stage == done) {  // everything promised is here: the stream must end without more output
            std::uint8_t extra;
            if (inflate_into(&extra, 1, rc) != 0) p.fail("has unexpected trailing bytes after ", want, " bytes of data");
            continue;
        }
        const std::size_t room = std::min(limit - filled, std::max<std::size_t>(filled, std::size_t(1) << 16));
        out.resize(filled + room);  // grows geometrically, never past the header's promise
        filled += inflate_into(out.data() + filled, room, rc);
        out.resize(filled);
    }
    if (left != 0) p.fail("has ", left, " unexpected bytes after the gzip stream");
    if (stage == magic) header_bytes = p.header_size(out);  // fewer than 4 bytes or a bad magic: its error
    if (filled < header_bytes) p.fail("is truncated: the header needs ", header_bytes, " bytes, the stream has ", filled);
    if (stage == magic || stage == header) a = read_dims();
    if (filled - header_bytes < want) p.fail("is truncated: the header promises ", want, " bytes of data, the file holds ", filled - header_bytes);
    a.data.assign(out.begin() + static_cast<std::ptrdiff_t>(header_bytes), out.end());
    return a;
}
}  // namespace idx_impl

/// Parses IDX bytes held in memory, plain or gzip (told apart by the gzip magic 0x1f 0x8b);
/// errors are fmd::io_error naming `name`.
inline IdxArray parse_idx(std::span<const std::uint8_t> bytes, std::string_view name = "bytes") {
    const idx_impl::Parser p{"data::parse_idx", name, name};
    if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return idx_impl::parse_gzip(bytes, p);
    return idx_impl::parse_plain(bytes, p);
}

/// Reads an IDX file of unsigned bytes (plain or gzip). Errors are fmd::io_error naming 'path':
/// missing file, wrong magic number or element type, truncated data (fewer bytes than the header
/// promises; a gzip stream cut anywhere, trailer included), a corrupted gzip stream (CRC-32 or
/// length mismatch), trailing bytes, a header whose sizes overflow or exceed what the file can hold.
inline IdxArray read_idx(const std::string& path) {
    constexpr const char* where = "data::read_idx";
    const std::vector<char> raw = fmd::detail::read_file(path, where);
    const std::span<const std::uint8_t> b(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
    const idx_impl::Parser p{where, "path", path};
    if (b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b) return idx_impl::parse_gzip(b, p);
    return idx_impl::parse_plain(b, p);
}

/// Writes an IDX file of unsigned bytes; gzip = true compresses it (what the tests and a data
/// preparation step use). Durable and atomic like checkpoints (core/file.hpp).
inline void write_idx(const std::string& path, const IdxArray& a, bool gzip = false) {
    constexpr const char* where = "data::write_idx";
    if (a.dims.empty() || a.dims.size() > 255) fmd::detail::fail(where, "a", "must have 1 … 255 dimensions, got ", a.dims.size());
    std::size_t count = 1;
    for (auto d : a.dims) {
        if (d != 0 && count > std::numeric_limits<std::size_t>::max() / d) fmd::detail::fail(where, "a", "has dims whose product overflows size_t");
        count *= d;
    }
    if (a.data.size() != count) fmd::detail::fail(where, "a", "holds ", a.data.size(), " bytes, its dims promise ", count);
    std::vector<char> b = {0, 0, 0x08, static_cast<char>(a.dims.size())};
    for (auto d : a.dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>(static_cast<std::uint8_t>(d >> s)));
    b.insert(b.end(), a.data.begin(), a.data.end());
    if (!gzip) {
        fmd::detail::write_file_atomic(path, b, where);
        return;
    }
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        fmd::detail::fail_io(where, "path", "cannot compress '", path, "' (zlib initialisation failed)");
    std::vector<char> gz(static_cast<std::size_t>(deflateBound(&z, static_cast<uLong>(b.size()))));
    z.next_in = reinterpret_cast<Bytef*>(b.data());
    z.next_out = reinterpret_cast<Bytef*>(gz.data());
    std::size_t in_left = b.size(), out_left = gz.size();
    int rc = Z_OK;
    while (rc == Z_OK) {  // chunks: zlib counts in 32 bits
        const uInt in = static_cast<uInt>(std::min<std::size_t>(in_left, 1u << 30)), out = static_cast<uInt>(std::min<std::size_t>(out_left, 1u << 30));
        z.avail_in = in;
        z.avail_out = out;
        rc = deflate(&z, in == in_left ? Z_FINISH : Z_NO_FLUSH);
        in_left -= in - z.avail_in;
        out_left -= out - z.avail_out;
    }
    gz.resize(gz.size() - out_left);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) fmd::detail::fail_io(where, "path", "cannot compress '", path, "' (zlib error)");
    fmd::detail::write_file_atomic(path, gz, where);
}

/// Images of an IDX array [n, rows, cols] (or [n, k]) as a (rows·cols) x n matrix.
template <class S>
Matrix<S> idx_images(const IdxArray& a, PixelScale scale = PixelScale::symmetric) {
    if (a.dims.size() < 2) fmd::detail::fail("data::idx_images", "a", "must have >= 2 dimensions (n, then the image's), got ", a.dims.size());
    const std::size_t count = a.count();
    if (a.data.size() != count) fmd::detail::fail("data::idx_images", "a", "holds ", a.data.size(), " bytes, its dims promise ", count);
    if (a.dims[0] == 0 || count == 0) fmd::detail::fail("data::idx_images", "a", "holds no images (dims ", a.dims[0], " x ", count / std::max<std::size_t>(a.dims[0], 1), ")");
    const auto n = static_cast<Eigen::Index>(a.dims[0]);
    const auto d = static_cast<Eigen::Index>(count / a.dims[0]);
    Matrix<S> m(d, n);
    const double mul = scale == PixelScale::symmetric ? 1.0 / 127.5 : 1.0 / 255.0, add = scale == PixelScale::symmetric ? -1.0 : 0.0;
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < d; ++i) m(i, j) = static_cast<S>(a.data[static_cast<std::size_t>(j * d + i)] * mul + add);
    return m;
}

/// Labels of a 1-D IDX array.
inline std::vector<int> idx_labels(const IdxArray& a) {
    if (a.dims.size() != 1) fmd::detail::fail("data::idx_labels", "a", "must be 1-D (one label per sample), got ", a.dims.size(), " dimensions");
    return {a.data.begin(), a.data.end()};
}

/// An image set with labels, e.g. Fashion-MNIST's training half.
template <class S>
struct LabelledImages {
    Matrix<S> images;         ///< (rows·cols) x n, scaled per PixelScale
    std::vector<int> labels;  ///< n class indices
    /// \var LabelledImages::rows
    /// Image height in pixels.
    /// \var LabelledImages::cols
    /// Image width in pixels.
    Eigen::Index rows = 0, cols = 0;
};

/// Reads an image file [n, rows, cols] and its label file [n]; throws naming 'labels_path' when
/// the counts differ (and 'images_path' / 'labels_path' for every error of read_idx).
template <class S>
LabelledImages<S> load_idx(const std::string& images_path, const std::string& labels_path, PixelScale scale = PixelScale::symmetric) {
    constexpr const char* where = "data::load_idx";
    auto read = [&](const std::string& p, const char* argument) {
        try {
            return read_idx(p);
        } catch (const fmd::io_error& e) {
            fmd::detail::fail_io(where, argument, e.what());
        }
    };
    const IdxArray im = read(images_path, "images_path"), lb = read(labels_path, "labels_path");
    if (im.dims.size() != 3) fmd::detail::fail(where, "images_path", "'", images_path, "' must hold n x rows x cols images, got ", im.dims.size(), " dimensions");
    if (lb.dims.size() != 1) fmd::detail::fail(where, "labels_path", "'", labels_path, "' must hold one label per image (1-D), got ", lb.dims.size(), " dimensions");
    if (lb.dims[0] != im.dims[0])
        fmd::detail::fail(where, "labels_path", "'", labels_path, "' holds ", lb.dims[0], " labels but '", images_path, "' holds ", im.dims[0], " images");
    LabelledImages<S> out;
    out.images = idx_images<S>(im, scale);
    out.labels = idx_labels(lb);
    out.rows = im.dims[1];
    out.cols = im.dims[2];
    return out;
}

}  // namespace fmd::data

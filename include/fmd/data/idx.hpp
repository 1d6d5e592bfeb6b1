#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed (zlib; link ZLIB::ZLIB,
// which the fmd::fmd target does). Not in fmd.hpp: include <fmd/data/idx.hpp> where needed.
//
//   offset  field
//   0       0x00 0x00                      magic, first half
//   2       u8 element type                 0x08 = unsigned byte (the only type read here)
//   3       u8 number of dimensions r ≥ 1
//   4       r × big-endian u32 sizes        e.g. [60000, 28, 28] for images, [60000] for labels
//   4 + 4r  Π sizes elements, row-major     (last index fastest)
//
// Images become a (rows·cols) x n matrix, one flattened image per column (row-major inside the
// image: pixel (r, c) at row r·cols + c), the batch layout of architecture.md. Pixel scaling:
// PixelScale::symmetric (default) maps byte v to v/127.5 − 1 ∈ [−1, 1] (data symmetric around 0,
// like the N(0, I) source); PixelScale::unit maps it to v/255 ∈ [0, 1].
//
//   auto train = fmd::data::load_idx<float>("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
//   train.images (784 x 60000), train.labels (60000 ints), train.rows = train.cols = 28
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

namespace fmd::data {

/// The raw content of an IDX file of unsigned bytes: sizes per dimension and the elements.
struct IdxArray {
    std::vector<std::uint32_t> dims;
    std::vector<std::uint8_t> data;  ///< Π dims bytes, row-major
    std::size_t count() const {
        std::size_t n = 1;
        for (auto d : dims) n *= d;
        return n;
    }
};

enum class PixelScale {
    symmetric,  ///< v/127.5 − 1 ∈ [−1, 1]
    unit,       ///< v/255 ∈ [0, 1]
};

namespace idx_impl {
inline std::string hex_byte(std::uint8_t v) {
    constexpr char digits[] = "0123456789abcdef";
    return {'0', 'x', digits[v >> 4], digits[v & 15]};
}

/// Reads a whole file through zlib's gzread, which passes plain files through unchanged.
inline std::vector<std::uint8_t> read_maybe_gzip(const std::string& path, const char* where) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr) fmd::detail::fail(where, "path", "cannot open '", path, "': ", std::strerror(errno));
    std::vector<std::uint8_t> bytes;
    std::uint8_t chunk[1 << 16];
    for (;;) {
        const int got = gzread(f, chunk, sizeof(chunk));
        if (got < 0) {
            int code = 0;
            const std::string message = gzerror(f, &code);
            gzclose(f);
            fmd::detail::fail(where, "path", "'", path, "' is truncated or corrupted (zlib: ", message, ")");
        }
        if (got == 0) break;
        bytes.insert(bytes.end(), chunk, chunk + got);
    }
    gzclose(f);
    return bytes;
}
}  // namespace idx_impl

/// Reads an IDX file of unsigned bytes (plain or gzip). Errors name 'path': missing file, wrong
/// magic number or element type, truncated data (fewer bytes than the header promises; also a
/// cut-off gzip stream), trailing bytes.
inline IdxArray read_idx(const std::string& path) {
    constexpr const char* where = "data::read_idx";
    const std::vector<std::uint8_t> b = idx_impl::read_maybe_gzip(path, where);
    if (b.size() < 4) fmd::detail::fail(where, "path", "'", path, "' is truncated: ", b.size(), " bytes, an IDX header needs at least 4");
    if (b[0] != 0 || b[1] != 0)
        fmd::detail::fail(where, "path", "'", path, "' is not an IDX file (bad magic number: first bytes ", idx_impl::hex_byte(b[0]), " ",
                          idx_impl::hex_byte(b[1]), ", expected 0x00 0x00)");
    if (b[2] != 0x08)
        fmd::detail::fail(where, "path", "'", path, "' has IDX element type ", idx_impl::hex_byte(b[2]), ", only 0x08 (unsigned byte) is supported");
    const int r = b[3];
    if (r < 1) fmd::detail::fail(where, "path", "'", path, "' is not an IDX file (bad magic number: 0 dimensions)");
    const std::size_t header = 4 + 4 * static_cast<std::size_t>(r);
    if (b.size() < header) fmd::detail::fail(where, "path", "'", path, "' is truncated: the header needs ", header, " bytes, the file has ", b.size());
    IdxArray a;
    for (int i = 0; i < r; ++i) {
        const std::uint8_t* p = b.data() + 4 + 4 * i;
        a.dims.push_back((std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]));
    }
    const std::size_t want = a.count(), have = b.size() - header;
    if (have < want) fmd::detail::fail(where, "path", "'", path, "' is truncated: the header promises ", want, " bytes of data, the file holds ", have);
    if (have > want) fmd::detail::fail(where, "path", "'", path, "' has ", have - want, " unexpected trailing bytes after ", want, " bytes of data");
    a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
    return a;
}

/// Writes an IDX file of unsigned bytes; gzip = true compresses it (what the tests and a data
/// preparation step use). Atomic like checkpoints: "<path>.tmp", then rename.
inline void write_idx(const std::string& path, const IdxArray& a, bool gzip = false) {
    constexpr const char* where = "data::write_idx";
    if (a.dims.empty() || a.dims.size() > 255) fmd::detail::fail(where, "a", "must have 1 … 255 dimensions, got ", a.dims.size());
    if (a.data.size() != a.count()) fmd::detail::fail(where, "a", "holds ", a.data.size(), " bytes, its dims promise ", a.count());
    std::vector<std::uint8_t> b = {0, 0, 0x08, static_cast<std::uint8_t>(a.dims.size())};
    for (auto d : a.dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
    b.insert(b.end(), a.data.begin(), a.data.end());
    const std::string tmp = path + ".tmp";
    bool ok = true;
    if (gzip) {
        gzFile f = gzopen(tmp.c_str(), "wb");
        if (f == nullptr) fmd::detail::fail(where, "path", "cannot open '", tmp, "' for writing");
        std::size_t done = 0;
        while (ok && done < b.size()) {
            const unsigned len = static_cast<unsigned>(std::min<std::size_t>(b.size() - done, 1u << 20));
            ok = gzwrite(f, b.data() + done, len) == static_cast<int>(len);
            done += len;
        }
        ok = gzclose(f) == Z_OK && ok;
    } else {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) fmd::detail::fail(where, "path", "cannot open '", tmp, "' for writing");
        f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        f.flush();
        ok = static_cast<bool>(f);
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        fmd::detail::fail(where, "path", "writing '", path, "' failed");
    }
}

/// Images of an IDX array [n, rows, cols] (or [n, k]) as a (rows·cols) x n matrix.
template <class S>
Matrix<S> idx_images(const IdxArray& a, PixelScale scale = PixelScale::symmetric) {
    if (a.dims.size() < 2) fmd::detail::fail("data::idx_images", "a", "must have >= 2 dimensions (n, then the image's), got ", a.dims.size());
    const auto n = static_cast<Eigen::Index>(a.dims[0]);
    const auto d = static_cast<Eigen::Index>(a.count() / (a.dims[0] == 0 ? 1 : a.dims[0]));
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
        } catch (const fmd::error& e) {
            fmd::detail::fail(where, argument, e.what());
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

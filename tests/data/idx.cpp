// data/idx.hpp: IDX files written by the test (plain and gzip) read back byte for byte and as
// scaled image matrices; wrong magic / element type, truncated data (plain, inside a gzip stream,
// cut-off header), trailing bytes and mismatched image/label counts each get their error.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include <catch2/catch.hpp>

#include <fmd/data/idx.hpp>

#include "support.hpp"

namespace {

using fmd::data::IdxArray;
using Catch::Matchers::Contains;

using fmd_test::names;
using fmd_test::read_bytes;
using fmd_test::TempDir;
using fmd_test::write_bytes;

// n images of 3 x 4 pixels with every byte value 0 … 255 appearing; labels i mod 10.
IdxArray images(std::uint32_t n) {
    IdxArray a{{n, 3, 4}, {}};
    for (std::uint32_t i = 0; i < n * 12; ++i) a.data.push_back(static_cast<std::uint8_t>((i * 37 + 11) % 256));
    return a;
}
/// A gzip stream of any bytes (IDX or not), as zlib writes it.
std::vector<std::uint8_t> gzip(const std::vector<std::uint8_t>& raw) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(raw.size())));
    z.next_in = const_cast<Bytef*>(raw.data());
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}
IdxArray labels(std::uint32_t n) {
    IdxArray a{{n}, {}};
    for (std::uint32_t i = 0; i < n; ++i) a.data.push_back(static_cast<std::uint8_t>(i % 10));
    return a;
}

}  // namespace

TEST_CASE("IDX: plain and gzip files round-trip; images become scaled columns", "[data]") {
    TempDir tmp;
    const IdxArray im = images(50), lb = labels(50);
    for (const bool gzip : {false, true}) {
        INFO("gzip " << gzip);
        const std::string ip = tmp.file(gzip ? "im.gz" : "im"), lp = tmp.file(gzip ? "lb.gz" : "lb");
        fmd::data::write_idx(ip, im, gzip);
        fmd::data::write_idx(lp, lb, gzip);
        const auto bytes = read_bytes(ip);
        // The file really is what the flag says: gzip magic 1f 8b, or the IDX header verbatim.
        if (gzip) {
            CHECK(static_cast<unsigned char>(bytes[0]) == 0x1f);
            CHECK(static_cast<unsigned char>(bytes[1]) == 0x8b);
        } else {
            CHECK(bytes.size() == 4 + 3 * 4 + 600);
            CHECK(std::vector<char>(bytes.begin(), bytes.begin() + 8) == std::vector<char>{0, 0, 8, 3, 0, 0, 0, 50});
        }
        const IdxArray back = fmd::data::read_idx(ip);
        CHECK(back.dims == im.dims);
        CHECK(back.data == im.data);

        const auto set = fmd::data::load_idx<float>(ip, lp);
        REQUIRE(set.images.rows() == 12);
        REQUIRE(set.images.cols() == 50);
        CHECK(set.rows == 3);
        CHECK(set.cols == 4);
        CHECK(set.labels.size() == 50);
        CHECK(set.labels[23] == 3);
        // Pixel (r, c) of image j is row r·cols + c of column j; symmetric scaling v/127.5 − 1.
        for (const int j : {0, 17, 49})
            for (int r = 0; r < 3; ++r)
                for (int c = 0; c < 4; ++c) {
                    const int v = im.data[static_cast<std::size_t>(j * 12 + r * 4 + c)];
                    CHECK(set.images(r * 4 + c, j) == Approx(v / 127.5 - 1.0).margin(1e-6));
                }
        CHECK(set.images.minCoeff() == -1.0f);
        CHECK(set.images.maxCoeff() == 1.0f);
        const auto unit = fmd::data::load_idx<double>(ip, lp, fmd::data::PixelScale::unit);
        CHECK(unit.images.minCoeff() == 0.0);
        CHECK(unit.images.maxCoeff() == 1.0);
        CHECK(unit.images(5, 7) == im.data[7 * 12 + 5] / 255.0);
    }
}

TEST_CASE("IDX: wrong magic, truncated, trailing bytes and mismatched counts each name their error", "[data]") {
    TempDir tmp;
    const std::string ip = tmp.file("im"), lp = tmp.file("lb"), gz = tmp.file("im.gz");
    fmd::data::write_idx(ip, images(20));
    fmd::data::write_idx(lp, labels(20));
    fmd::data::write_idx(gz, images(20), true);
    const auto good = read_bytes(ip), good_gz = read_bytes(gz);

    SECTION("wrong magic number") {
        auto b = good;
        b[1] = 0x01;
        write_bytes(ip, b);
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("argument 'path'") && Contains("bad magic number") && Contains("0x00 0x01"));
        b[1] = 0;
        b[2] = 0x0d;  // float elements: a valid IDX type this reader does not support
        write_bytes(ip, b);
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("element type 0x0d"));
        write_bytes(ip, {'P', 'K', 3, 4, 0, 0});
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("bad magic number"));
    }
    SECTION("truncated file") {
        write_bytes(ip, std::vector<char>(good.begin(), good.end() - 5));
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("argument 'path'") && Contains("truncated") && Contains("promises 240 bytes") &&
                                                       Contains("holds 235"));
        write_bytes(ip, std::vector<char>(good.begin(), good.begin() + 9));  // inside the sizes
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("truncated") && Contains("header needs 16 bytes"));
        write_bytes(ip, std::vector<char>(good.begin(), good.begin() + 2));
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("truncated"));
        // A gzip stream cut in half: zlib reports the unexpected end, or the data come up short.
        write_bytes(gz, std::vector<char>(good_gz.begin(), good_gz.begin() + static_cast<std::ptrdiff_t>(good_gz.size() / 2)));
        CHECK_THROWS_WITH(fmd::data::read_idx(gz), Contains("argument 'path'") && Contains("truncated"));
    }
    SECTION("trailing bytes") {
        auto b = good;
        b.push_back(7);
        write_bytes(ip, b);
        CHECK_THROWS_WITH(fmd::data::read_idx(ip), Contains("1 unexpected trailing bytes"));
    }
    SECTION("mismatched image and label counts") {
        fmd::data::write_idx(lp, labels(19));
        CHECK_THROWS_WITH(fmd::data::load_idx<float>(ip, lp), Contains("argument 'labels_path'") && Contains("holds 19 labels") && Contains("holds 20 images"));
        // Swapped files: the labels file is not n x rows x cols.
        fmd::data::write_idx(lp, labels(20));
        CHECK_THROWS_WITH(fmd::data::load_idx<float>(lp, ip), Contains("argument 'images_path'"));
    }
    SECTION("missing file and bad arrays for the writer") {
        CHECK_THROWS_WITH(fmd::data::read_idx(tmp.file("nope")), Contains("argument 'path'") && Contains("cannot open"));
        CHECK_THROWS_WITH(fmd::data::load_idx<float>(ip, tmp.file("nope")), Contains("argument 'labels_path'"));
        CHECK_THROWS_WITH(fmd::data::write_idx(ip, IdxArray{{2, 2}, {1, 2, 3}}), Contains("argument 'a'"));
    }
}

TEST_CASE("IDX gzip: every cut, bit flip in the stream and trailing byte is an error, never wrong pixels", "[data]") {
    TempDir tmp;
    const std::string gz = tmp.file("im.gz"), bad = tmp.file("bad.gz");
    const IdxArray im = images(40);
    fmd::data::write_idx(gz, im, true);
    const auto good = read_bytes(gz);
    REQUIRE(good.size() > 30);
    SECTION("cut anywhere, the 8-byte trailer (CRC-32, length) included") {
        for (std::size_t keep = 0; keep < good.size(); ++keep) {
            INFO("kept " << keep << " of " << good.size());
            write_bytes(bad, std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)));
            CHECK_THROWS_MATCHES(fmd::data::read_idx(bad), fmd::io_error, names("path"));
        }
    }
    SECTION("one flipped bit after the 10-byte gzip header: an error, or (if the flip is harmless) the same data") {
        long errors = 0, harmless = 0;
        for (std::size_t at = 10; at < good.size(); ++at)
            for (int bit = 0; bit < 8; ++bit) {
                auto b = good;
                b[at] = static_cast<char>(b[at] ^ (1 << bit));
                write_bytes(bad, b);
                try {
                    const IdxArray back = fmd::data::read_idx(bad);
                    INFO("byte " << at << " bit " << bit);
                    CHECK(back.dims == im.dims);
                    CHECK(back.data == im.data);
                    ++harmless;
                } catch (const fmd::io_error& e) {
                    CHECK_THAT(std::string(e.what()), Contains("argument 'path'"));
                    ++errors;
                }
            }
        CHECK(errors > 50 * harmless);  // CRC-32 catches every single-bit error in the data
    }
    SECTION("bytes after the gzip stream") {
        auto b = good;
        b.insert(b.end(), {'j', 'u', 'n', 'k'});
        write_bytes(bad, b);
        CHECK_THROWS_MATCHES(fmd::data::read_idx(bad), fmd::io_error, names("path", "4 unexpected bytes after the gzip stream"));
        b = good;
        b.insert(b.end(), good.begin(), good.end());  // a second gzip member
        write_bytes(bad, b);
        CHECK_THROWS_MATCHES(fmd::data::read_idx(bad), fmd::io_error, names("path", "unexpected bytes after the gzip stream"));
    }
}

TEST_CASE("IDX: decompression bombs, overflowing and empty headers are rejected before their data is allocated", "[data]") {
    TempDir tmp;
    SECTION("a gzip stream that inflates past its header's promise stops there") {
        // [0 0 8 1 | 10 bytes promised | 64 MiB of zeros]: about 64 KiB compressed.
        std::vector<std::uint8_t> raw((64u << 20) + 8, 0);
        const std::uint8_t header[8] = {0, 0, 8, 1, 0, 0, 0, 10};
        std::copy(header, header + 8, raw.begin());
        const auto bomb = gzip(raw);
        REQUIRE(bomb.size() < (1u << 20));
        CHECK_THROWS_MATCHES(fmd::data::parse_idx(bomb, "bomb"), fmd::io_error, names("bomb", "unexpected trailing bytes after 10 bytes"));
        raw.resize(8 + 10);  // the honest file
        CHECK(fmd::data::parse_idx(gzip(raw)).data.size() == 10);
    }
    SECTION("a header claiming more than a gzip file of its size can hold") {
        const auto b = gzip({0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff});
        CHECK_THROWS_MATCHES(fmd::data::parse_idx(b, "b"), fmd::io_error, names("b", "more than a gzip file of"));
        const std::vector<std::uint8_t> plain = {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
        CHECK_THROWS_MATCHES(fmd::data::parse_idx(plain, "plain"), fmd::io_error, names("plain", "truncated"));
    }
    SECTION("dimensions whose product overflows size_t") {
        const std::vector<std::uint8_t> b = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        CHECK_THROWS_MATCHES(fmd::data::parse_idx(b, "b"), fmd::io_error, names("b", "overflows"));
        CHECK_THROWS_MATCHES(fmd::data::parse_idx(gzip(b), "b"), fmd::io_error, names("b", "overflows"));
        const IdxArray a{{0xffffffffu, 0xffffffffu, 0xffffffffu}, {}};
        CHECK_THROWS_MATCHES(a.count(), fmd::invalid_argument, names("dims", "overflows"));
        CHECK_THROWS_MATCHES(fmd::data::write_idx(tmp.file("f"), a), fmd::invalid_argument, names("a", "overflows"));
    }
    SECTION("an empty image set: 4e9 images of 0 x 0 pixels") {
        const std::vector<std::uint8_t> b = {0, 0, 8, 3, 0xee, 0x6b, 0x28, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
        const IdxArray a = fmd::data::parse_idx(b);
        CHECK(a.count() == 0);
        CHECK_THROWS_MATCHES(fmd::data::idx_images<float>(a), fmd::invalid_argument, names("a", "holds no images"));
    }
}

// The fuzz targets' seed corpora (tests/fuzz/corpus/) replayed in the regular suite, so every
// regression input is checked by every build, sanitizers included, without clang: each
// "regression_*" file is rejected with fmd::io_error naming the input, every other seed parses.
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/data/idx.hpp>
#include <fmd/train/checkpoint.hpp>
#include <fmd/train/reflow.hpp>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> seeds(const std::string& corpus) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(fs::path(FMD_FUZZ_CORPUS) / corpus)) out.push_back(e.path());
    return out;
}
bool is_regression(const fs::path& p) { return p.filename().string().rfind("regression_", 0) == 0; }

}  // namespace

TEST_CASE("Fuzz corpus: IDX seeds parse, IDX regression inputs are rejected", "[data][fuzz]") {
    int regressions = 0, valid = 0;
    for (const std::string corpus : {"idx_plain", "idx_gzip"})
        for (const auto& p : seeds(corpus)) {
            INFO(p.string());
            const auto raw = fmd_test::read_bytes(p.string());
            const std::vector<std::uint8_t> b(raw.begin(), raw.end());
            if (is_regression(p)) {
                ++regressions;
                if (p.filename() == "regression_4e9_empty_images") {  // a valid empty array; the image view refuses it
                    CHECK_THROWS_MATCHES(fmd::data::idx_images<float>(fmd::data::parse_idx(b)), fmd::invalid_argument, fmd_test::names("a"));
                    continue;
                }
                CHECK_THROWS_MATCHES(fmd::data::parse_idx(b, "seed"), fmd::io_error, fmd_test::names("seed"));
                CHECK_THROWS_AS(fmd::data::read_idx(p.string()), fmd::io_error);
            } else {
                ++valid;
                CHECK_NOTHROW(fmd::data::read_idx(p.string()));
            }
        }
    CHECK(regressions >= 10);
    CHECK(valid >= 4);
}

TEST_CASE("Fuzz corpus: checkpoint seeds parse, checkpoint regression inputs are rejected", "[train][fuzz]") {
    int regressions = 0, valid = 0;
    for (const auto& p : seeds("checkpoint")) {
        INFO(p.string());
        const auto b = fmd_test::read_bytes(p.string());
        auto parses = [&] {
            try {
                (void)fmd::train::parse_checkpoint<float>(b, "seed");
                return true;
            } catch (const fmd::io_error& e) {
                if (std::string(e.what()).find("32-bit scalars, expected") == std::string::npos &&
                    std::string(e.what()).find("64-bit scalars, expected") == std::string::npos)
                    throw;
            }
            (void)fmd::train::parse_checkpoint<double>(b, "seed");
            return true;
        };
        if (is_regression(p)) {
            ++regressions;
            CHECK_THROWS_MATCHES(parses(), fmd::io_error, fmd_test::names("seed"));
        } else {
            ++valid;
            CHECK(parses());
        }
    }
    CHECK(regressions >= 5);
    CHECK(valid >= 3);
}

TEST_CASE("Fuzz corpus: pair-file seeds parse, pair-file regression inputs are rejected", "[train][fuzz]") {
    int regressions = 0, valid = 0;
    for (const auto& p : seeds("pairs")) {
        INFO(p.string());
        const auto b = fmd_test::read_bytes(p.string());
        auto parses = [&] {
            try {
                (void)fmd::train::parse_pairs<float>(b, "seed");
                return true;
            } catch (const fmd::io_error& e) {
                if (std::string(e.what()).find("scalars, expected") == std::string::npos) throw;
            }
            (void)fmd::train::parse_pairs<double>(b, "seed");
            return true;
        };
        if (is_regression(p)) {
            ++regressions;
            CHECK_THROWS_MATCHES(parses(), fmd::io_error, fmd_test::names("seed"));
        } else {
            ++valid;
            CHECK(parses());
        }
    }
    CHECK(regressions >= 4);
    CHECK(valid >= 2);
}

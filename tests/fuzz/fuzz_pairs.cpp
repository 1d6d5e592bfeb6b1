// libFuzzer target: train::parse_pairs on arbitrary bytes, as float and as double. A malformed
// input must end in fmd::io_error; an accepted one holds finite pairs of equal shape and
// serializes back to exactly its bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include <fmd/train/reflow.hpp>

namespace {
template <class S>
void check(std::span<const char> bytes) {
    fmd::train::PairSet<S> p;
    try {
        p = fmd::train::parse_pairs<S>(bytes, "input");
    } catch (const fmd::io_error&) {
        return;
    }
    if (!p.noise.allFinite() || !p.data.allFinite()) std::abort();
    if (p.noise.rows() != p.data.rows() || p.noise.cols() != p.data.cols()) std::abort();
    const auto again = fmd::train::serialize_pairs(p);
    if (again.size() != bytes.size() || std::memcmp(again.data(), bytes.data(), bytes.size()) != 0) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
    check<float>(bytes);
    check<double>(bytes);
    return 0;
}

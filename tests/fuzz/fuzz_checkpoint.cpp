// libFuzzer target: train::parse_checkpoint on arbitrary bytes, as float and as double. A
// malformed input must end in fmd::io_error; anything else is a finding. An accepted version-2
// file must serialize back to exactly its bytes, hold only finite numbers and step counts below 2^63.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include <fmd/train/checkpoint.hpp>

namespace {
template <class S>
void check(std::span<const char> bytes) {
    fmd::train::Checkpoint<S> c;
    try {
        c = fmd::train::parse_checkpoint<S>(bytes, "input");
    } catch (const fmd::io_error&) {
        return;
    }
    if (!c.parameters.allFinite()) std::abort();
    for (const auto& v : c.optimizer_state)
        if (!v.allFinite()) std::abort();
    for (const auto& v : c.extra)
        if (!v.allFinite()) std::abort();
    if (c.step > fmd::train::ckpt::max_step || c.optimizer_step > fmd::train::ckpt::max_step) std::abort();
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    if (version == fmd::train::ckpt::checkpoint_version) {
        const auto again = fmd::train::serialize_checkpoint(c);
        if (again.size() != bytes.size() || std::memcmp(again.data(), bytes.data(), bytes.size()) != 0) std::abort();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
    check<float>(bytes);
    check<double>(bytes);
    return 0;
}

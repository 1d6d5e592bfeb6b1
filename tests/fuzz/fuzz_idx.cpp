// libFuzzer target: data::parse_idx on arbitrary bytes (plain and gzip IDX). A malformed input
// must end in fmd::io_error; anything else (a crash, a sanitizer report, another exception, an
// allocation past -malloc_limit_mb) is a finding. Accepted input must be self-consistent, and a
// plain file must re-encode to exactly its bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <fmd/data/idx.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    fmd::data::IdxArray a;
    try {
        a = fmd::data::parse_idx(bytes, "input");
    } catch (const fmd::io_error&) {
        return 0;
    }
    if (a.data.size() != a.count()) std::abort();
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip) {  // header + data, byte for byte
        if (size != 4 + 4 * a.dims.size() + a.data.size()) std::abort();
        for (std::size_t i = 0; i < a.data.size(); ++i)
            if (a.data[i] != data[size - a.data.size() + i]) std::abort();
    }
    if (a.dims.size() >= 2) {
        try {
            const auto images = fmd::data::idx_images<float>(a);
            if (images.size() != static_cast<Eigen::Index>(a.data.size())) std::abort();
        } catch (const fmd::invalid_argument&) {
        }
    }
    return 0;
}

// libFuzzer target: io::parse_safetensors on arbitrary bytes, then the accepted file loaded into a
// small MLP. A malformed input must end in fmd::io_error; anything else (a crash, a sanitizer
// report, another exception, an allocation past -malloc_limit_mb) is a finding. An accepted file
// must be self-consistent and survive serialize → parse unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <fmd/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
    fmd::io::SafeTensors file;
    try {
        file = fmd::io::parse_safetensors(bytes, "input");
    } catch (const fmd::io_error&) {
        return 0;
    }
    for (const auto& [name, t] : file) {
        if (t.data.size() != static_cast<std::size_t>(t.numel()) * fmd::io::dtype_size(t.dtype)) std::abort();
        if (fmd::io::is_floating(t.dtype) && t.values<double>().size() != static_cast<std::size_t>(t.numel())) std::abort();
    }
    const auto again = fmd::io::parse_safetensors(fmd::io::serialize_safetensors(file), "serialized");
    if (again.size() != file.size() || again.metadata != file.metadata) std::abort();
    for (const auto& [name, t] : file) {
        const fmd::io::Tensor& u = again.at(name);
        if (u.dtype != t.dtype || u.shape != t.shape || u.data != t.data) std::abort();
    }
    static fmd::nn::MLP<float> net({.dim = 2, .width = 4, .depth = 1}, 0);
    const fmd::Vector<float> before = net.parameters();
    try {
        fmd::io::load_mlp(file, net);
    } catch (const fmd::io_error&) {
        if (net.parameters() != before) std::abort();  // all or nothing
    }
    return 0;
}

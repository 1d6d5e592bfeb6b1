#pragma once
// safetensors files, the weight format PyTorch / diffusers users exchange: reading, writing, and
// named tensors viewed inside a flat parameter buffer (nn::MLP's or any network's).
//
// Optional header, not included by fmd.hpp: it needs nlohmann-json (CMake target fmd::safetensors).
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [d0, d1, …], "data_offsets": [begin, end]}, …,
//    "__metadata__": {"<key>": "<value>", …}}                                  (metadata optional)
// then the data buffer. Offsets count bytes from the buffer's start; a tensor's elements are
// little-endian in row-major (C) order; the tensors tile the buffer exactly (no gap, no overlap,
// nothing after the last one). The reader checks all of it before allocating any tensor and
// keeps every tensor's bytes as they are (any dtype round-trips bit for bit); F16, BF16, F32 and
// F64 convert to float / double: F16, BF16, F32 exactly, F64 to float rounded to nearest.
//
// Parameter buffers: a ParameterLayout names tensors inside one flat buffer (name, shape, offset,
// element order). Eigen matrices are column-major, PyTorch tensors row-major: a view with
// Order::column_major holds element (r, c) of an R x C tensor at offset + r + c·R, so a Linear
// weight goes to PyTorch as its [out, in] weight without a transposed copy in the caller's code.
// load_parameters is all-or-nothing: it checks every name, shape, dtype and value first and
// changes the buffer only when all pass.
//
// nn::MLP names (the seed notebook's PyTorch model, benchmarks/compare/notebook_model.py):
//   in_projection.{weight,bias}      Linear_in      [width, dim]
//   t_projection.{weight,bias}       Linear_time    [width, channels]
//   blocks.K.0.{weight,bias}         Linear_{K+1}   [width, width]    K = 0 … depth − 1
//   out_projection.{weight,bias}     Linear_out     [out_dim, width]
// and for what the notebook model does not have:
//   interval_projection.{weight,bias}  Linear_interval [width, channels]   (two_times)
//   class_embedding.weight             class table E   [num_classes + 1, width] (like torch.nn.Embedding;
//                                                       row num_classes is the null label)
// Activation, time embedding (kind, scale, Fourier frequencies by seed) are configuration, not
// weights: save_mlp stores MLP::describe() as metadata "fmd.mlp", and load_mlp refuses a file whose
// "fmd.mlp" differs from the network's (a file without it, e.g. from PyTorch, is checked by shapes).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <fmd/core/error.hpp>
#include <fmd/core/file.hpp>
#include <fmd/nn/mlp.hpp>

namespace fmd::io {

using Index = Eigen::Index;

/// Element types of the safetensors format. Every one is read and written as raw bytes;
/// f16, bf16, f32 and f64 also convert to and from float / double.
enum class DType : std::uint8_t { boolean, u8, i8, u16, i16, u32, i32, u64, i64, f8_e4m3, f8_e5m2, f16, bf16, f32, f64 };

namespace st_impl {
struct DTypeInfo {
    DType dtype;
    std::string_view name;
    std::size_t size;
};
inline constexpr DTypeInfo dtypes[] = {
    {DType::boolean, "BOOL", 1}, {DType::u8, "U8", 1},   {DType::i8, "I8", 1},           {DType::u16, "U16", 2},
    {DType::i16, "I16", 2},      {DType::u32, "U32", 4}, {DType::i32, "I32", 4},         {DType::u64, "U64", 8},
    {DType::i64, "I64", 8},      {DType::f8_e4m3, "F8_E4M3", 1}, {DType::f8_e5m2, "F8_E5M2", 1}, {DType::f16, "F16", 2},
    {DType::bf16, "BF16", 2},    {DType::f32, "F32", 4}, {DType::f64, "F64", 8},
};
}  // namespace st_impl

/// The format's name of a dtype ("F32", "BF16", …).
inline std::string_view dtype_name(DType d) { return st_impl::dtypes[static_cast<std::size_t>(d)].name; }
/// Bytes per element.
inline std::size_t dtype_size(DType d) { return st_impl::dtypes[static_cast<std::size_t>(d)].size; }
/// The dtype of a format name, or nothing when the name is not one of the format's.
inline std::optional<DType> parse_dtype(std::string_view name) {
    for (const auto& i : st_impl::dtypes)
        if (i.name == name) return i.dtype;
    return std::nullopt;
}
/// Whether values of this dtype convert to float / double (F16, BF16, F32, F64).
inline bool is_floating(DType d) { return d == DType::f16 || d == DType::bf16 || d == DType::f32 || d == DType::f64; }

// ---------------------------------------------------------------------------------------------
// IEEE binary16 and bfloat16, exactly: decoding is exact (every value is a double), encoding
// rounds to nearest, ties to even, straight from double (no double rounding through float),
// with subnormals, overflow to ±inf, signed zeros and NaN (quiet, sign kept).

namespace st_impl {
// Round to nearest integer, ties to even, for 0 <= y < 2^53 (independent of the FPU's rounding mode).
inline double round_even(double y) {
    const double f = std::floor(y), d = y - f;
    if (d > 0.5 || (d == 0.5 && std::fmod(f, 2.0) != 0.0)) return f + 1.0;
    return f;
}

template <int E, int M>
std::uint16_t encode_small(double x) {
    constexpr int bias = (1 << (E - 1)) - 1, emin = 1 - bias;
    constexpr std::uint32_t inf = ((1u << E) - 1u) << M;
    const std::uint32_t sign = std::signbit(x) ? (1u << (E + M)) : 0u;
    if (std::isnan(x)) return static_cast<std::uint16_t>(sign | inf | (1u << (M - 1)));
    const double a = std::fabs(x);
    if (a == 0.0) return static_cast<std::uint16_t>(sign);
    if (std::isinf(a)) return static_cast<std::uint16_t>(sign | inf);
    int e = 0;
    const double m = std::frexp(a, &e);  // a = m·2^e, m ∈ [0.5, 1)
    std::uint32_t bits;
    if (e - 1 < emin) {  // subnormal: multiples of 2^(emin − M); a carry to 2^M is the smallest normal
        bits = static_cast<std::uint32_t>(round_even(std::ldexp(a, M - emin)));
    } else if (e - 1 > bias) {
        bits = inf;
    } else {  // q ∈ [2^M, 2^(M+1)]: q = 2^(M+1) carries into the exponent, up to inf
        const auto q = static_cast<std::uint32_t>(round_even(std::ldexp(m, M + 1)));
        bits = (static_cast<std::uint32_t>(e - 2 + bias) << M) + q;
        if (bits > inf) bits = inf;
    }
    return static_cast<std::uint16_t>(sign | bits);
}
}  // namespace st_impl

/// IEEE binary16 bits → float (exact: every binary16 value is a float; NaN payloads kept).
inline float half_to_float(std::uint16_t bits) {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16, e = (bits >> 10) & 0x1Fu, m = bits & 0x3FFu;
    if (e == 0) {  // zero or subnormal m·2^-24: m < 2^10 and the scale are exact in float
        const float v = static_cast<float>(m) * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return std::bit_cast<float>(sign | 0x7F800000u | (m << 13));  // ±inf, NaN
    return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));        // rebias 15 → 127
}
/// bfloat16 bits → float (exact: bfloat16 is the top half of a float).
inline float bfloat16_to_float(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
/// IEEE binary16 bits → value (exact).
inline double half_to_double(std::uint16_t bits) { return static_cast<double>(half_to_float(bits)); }
/// bfloat16 bits → value (exact).
inline double bfloat16_to_double(std::uint16_t bits) { return static_cast<double>(bfloat16_to_float(bits)); }
/// Value → IEEE binary16 bits, rounded to nearest even; beyond 65504 (from 65520 on) → ±inf.
inline std::uint16_t double_to_half(double x) { return st_impl::encode_small<5, 10>(x); }
/// Value → bfloat16 bits, rounded to nearest even (PyTorch's .bfloat16() on a float).
inline std::uint16_t double_to_bfloat16(double x) { return st_impl::encode_small<8, 7>(x); }

// ---------------------------------------------------------------------------------------------
// Tensors and files

namespace st_impl {
inline std::uint64_t load_le(const unsigned char* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}
inline void store_le(unsigned char* p, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}
// Element count of a shape; nullopt when a dimension is negative or the count or its byte size
// overflows.
inline std::optional<std::uint64_t> element_count(const std::vector<std::int64_t>& shape) {
    std::uint64_t n = 1;
    bool zero = false;
    constexpr std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / 8;
    for (std::int64_t d : shape) {
        if (d < 0) return std::nullopt;
        if (d == 0) zero = true;
        else if (n > limit / static_cast<std::uint64_t>(d)) return std::nullopt;
        else n *= static_cast<std::uint64_t>(d);
    }
    return zero ? 0 : n;
}
}  // namespace st_impl

/// One tensor: dtype, shape (row-major, as PyTorch sees it; empty = a scalar) and its bytes
/// (little-endian elements in row-major order, exactly as in the file).
struct Tensor {
    DType dtype = DType::f32;          ///< element type
    std::vector<std::int64_t> shape;   ///< dimensions, row-major (PyTorch's order); empty = a scalar
    std::vector<unsigned char> data;   ///< numel() · dtype_size(dtype) bytes, little-endian, row-major

    /// Number of elements (1 for a scalar).
    std::int64_t numel() const {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }

    /// A little-endian unsigned integer at p (one load on little-endian machines).
    template <class U>
    static U load(const unsigned char* p) {
        if constexpr (std::endian::native == std::endian::little) {
            U v;
            std::memcpy(&v, p, sizeof v);
            return v;
        } else {
            return static_cast<U>(st_impl::load_le(p, sizeof(U)));
        }
    }

    /// Element i as a double (exact for F16, BF16, F32, F64). No checks: see values().
    double value(std::size_t i) const {
        const unsigned char* p = data.data() + i * dtype_size(dtype);
        switch (dtype) {
            case DType::f16: return half_to_double(static_cast<std::uint16_t>(st_impl::load_le(p, 2)));
            case DType::bf16: return bfloat16_to_double(static_cast<std::uint16_t>(st_impl::load_le(p, 2)));
            case DType::f32: return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(st_impl::load_le(p, 4))));
            case DType::f64: return std::bit_cast<double>(st_impl::load_le(p, 8));
            default: return std::numeric_limits<double>::quiet_NaN();
        }
    }

    /// The elements in row-major order as float or double; F64 into float rounds to nearest.
    /// fmd::invalid_argument when the dtype is not a floating-point one.
    template <class T>
    std::vector<T> values() const {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fmd::io::Tensor::values: T must be float or double");
        if (!is_floating(dtype))
            detail::fail("io::Tensor::values", "dtype", "is ", dtype_name(dtype), ", not a floating-point type (F16, BF16, F32, F64)");
        std::vector<T> out(data.size() / dtype_size(dtype));
        const unsigned char* p = data.data();
        for (std::size_t i = 0; i < out.size(); ++i) {  // one tight loop per dtype: large checkpoints load at memory speed
            switch (dtype) {
                case DType::f16: out[i] = static_cast<T>(half_to_float(load<std::uint16_t>(p + 2 * i))); break;
                case DType::bf16: out[i] = static_cast<T>(bfloat16_to_float(load<std::uint16_t>(p + 2 * i))); break;
                case DType::f32: out[i] = static_cast<T>(std::bit_cast<float>(load<std::uint32_t>(p + 4 * i))); break;
                default: out[i] = static_cast<T>(std::bit_cast<double>(load<std::uint64_t>(p + 8 * i))); break;
            }
        }
        return out;
    }

    /// A tensor of `dtype` (F16, BF16, F32 or F64) holding `values` (row-major), each rounded to
    /// nearest even when the dtype is narrower. fmd::invalid_argument when the count does not match the shape.
    template <class T>
    static Tensor from_values(DType dtype, std::vector<std::int64_t> shape, std::span<const T> values) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fmd::io::Tensor::from_values: T must be float or double");
        constexpr std::string_view where = "io::Tensor::from_values";
        if (!is_floating(dtype)) detail::fail(where, "dtype", "must be F16, BF16, F32 or F64, got ", dtype_name(dtype));
        const auto count = st_impl::element_count(shape);
        if (!count) detail::fail(where, "shape", st_impl::shape_text(shape), " has a negative dimension or too many elements");
        if (*count != values.size())
            detail::fail(where, "values", "holds ", values.size(), " elements, shape ", st_impl::shape_text(shape), " needs ", *count);
        Tensor t{dtype, std::move(shape), {}};
        const std::size_t size = dtype_size(dtype);
        t.data.resize(values.size() * size);
        for (std::size_t i = 0; i < values.size(); ++i) {
            const double v = static_cast<double>(values[i]);
            unsigned char* p = t.data.data() + i * size;
            switch (dtype) {
                case DType::f16: st_impl::store_le(p, double_to_half(v), 2); break;
                case DType::bf16: st_impl::store_le(p, double_to_bfloat16(v), 2); break;
                case DType::f32: st_impl::store_le(p, std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4); break;
                default: st_impl::store_le(p, std::bit_cast<std::uint64_t>(v), 8); break;
            }
        }
        return t;
    }
    /// Same from a std::vector.
    template <class T>
    static Tensor from_values(DType dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
        return from_values(dtype, std::move(shape), std::span<const T>(values));
    }
};

/// The contents of a safetensors file: named tensors (sorted by name) and the string metadata.
class SafeTensors {
public:
    std::map<std::string, std::string> metadata;  ///< the header's "__metadata__" (string → string)

    /// Adds a tensor. fmd::invalid_argument for an empty or reserved name ("__metadata__"), a name
    /// already present, a negative dimension, or bytes that do not match the shape and dtype.
    void insert(std::string name, Tensor tensor) {
        constexpr std::string_view where = "io::SafeTensors::insert";
        if (name.empty() || name == "__metadata__") detail::fail(where, "name", "must be non-empty and not '__metadata__', got '", name, "'");
        if (tensors_.count(name)) detail::fail(where, "name", "'", name, "' is already present (duplicate tensor name)");
        const auto count = st_impl::element_count(tensor.shape);
        if (!count || *count * dtype_size(tensor.dtype) != tensor.data.size())
            detail::fail(where, "tensor", "'", name, "' holds ", tensor.data.size(), " bytes, shape ", st_impl::shape_text(tensor.shape), " of ",
                         dtype_name(tensor.dtype), " needs ", count ? std::to_string(*count * dtype_size(tensor.dtype)) : std::string("(invalid shape)"));
        tensors_.emplace(std::move(name), std::move(tensor));
    }
    /// The tensor called `name`; fmd::invalid_argument naming it when absent.
    const Tensor& at(std::string_view name) const {
        const Tensor* t = find(name);
        if (t == nullptr) detail::fail("io::SafeTensors::at", "name", "'", name, "' is not in the file");
        return *t;
    }
    /// The tensor called `name`, or nullptr.
    const Tensor* find(std::string_view name) const {
        const auto it = tensors_.find(name);
        return it == tensors_.end() ? nullptr : &it->second;
    }
    /// Whether a tensor called `name` is present.
    bool contains(std::string_view name) const { return find(name) != nullptr; }
    /// Removes the tensor called `name`; false when there was none.
    bool erase(std::string_view name) {
        const auto it = tensors_.find(name);
        if (it == tensors_.end()) return false;
        tensors_.erase(it);
        return true;
    }
    /// Number of tensors.
    std::size_t size() const { return tensors_.size(); }
    /// Whether there is no tensor.
    bool empty() const { return tensors_.empty(); }
    /// Name → tensor, sorted by name.
    const std::map<std::string, Tensor, std::less<>>& tensors() const { return tensors_; }
    /// Iteration over (name, tensor) pairs, sorted by name.
    auto begin() const { return tensors_.begin(); }
    /// End of the iteration.
    auto end() const { return tensors_.end(); }

private:
    std::map<std::string, Tensor, std::less<>> tensors_;
};

/// Largest header accepted (the reference implementation's limit).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

namespace st_impl {
struct Parser {
    std::string_view where, argument, source;
    template <class... P>
    [[noreturn]] void fail(const P&... parts) const {
        detail::fail_io(where, argument, "'", source, "': ", parts...);
    }
};

// Rejects a repeated key in any JSON object (nlohmann keeps the last one silently).
inline nlohmann::json parse_header(std::string_view text, const Parser& p) {
    std::vector<std::set<std::string>> keys;
    std::string duplicate;
    const nlohmann::json::parser_callback_t check = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) keys.emplace_back();
        else if (event == E::object_end && !keys.empty()) keys.pop_back();
        else if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.begin(), text.end(), check);
    } catch (const nlohmann::json::exception& e) {
        p.fail("the header is not valid JSON (", e.what(), ")");
    }
    if (!duplicate.empty()) p.fail("the header names '", duplicate, "' twice (duplicate key)");
    if (!j.is_object()) p.fail("the header must be a JSON object, got ", j.type_name());
    return j;
}

// A JSON value for an error message: scalars as written (cut at 40 characters), containers by
// type only (printing a deeply nested one would recurse as deep as it is).
inline std::string brief(const nlohmann::json& v) {
    if (v.is_structured()) return std::string("a JSON ") + v.type_name() + " of " + std::to_string(v.size()) + " entries";
    std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return s.size() > 40 ? s.substr(0, 40) + "…" : s;
}

inline std::uint64_t unsigned_number(const nlohmann::json& v, const Parser& p, const std::string& name, std::string_view field) {
    if (!v.is_number_unsigned()) p.fail("tensor '", name, "': ", field, " must hold non-negative integers, got ", brief(v));
    return v.get<std::uint64_t>();
}

struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::uint64_t begin, end;
};

inline SafeTensors parse(std::span<const unsigned char> b, const Parser& p) {
    if (b.size() < 8) p.fail("is truncated: ", b.size(), " bytes, fewer than the 8-byte header length");
    const std::uint64_t n = load_le(b.data(), 8);
    if (n > max_header_bytes) p.fail("header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    if (n > b.size() - 8) p.fail("header length ", n, " exceeds the ", b.size() - 8, " bytes after the length field (truncated or not a safetensors file)");
    if (n < 2 || b[8] != '{') p.fail("the header must be a JSON object starting with '{'");
    const std::string_view text(reinterpret_cast<const char*>(b.data() + 8), static_cast<std::size_t>(n));
    const nlohmann::json header = parse_header(text, p);
    const std::uint64_t buffer = b.size() - 8 - n;

    SafeTensors out;
    std::vector<Entry> entries;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) p.fail("__metadata__ must be an object of strings, got ", info.type_name());
            for (const auto& [key, value] : info.items()) {
                if (!value.is_string()) p.fail("__metadata__ '", key, "' must be a string, got ", brief(value));
                out.metadata.emplace(key, value.get<std::string>());
            }
            continue;
        }
        if (name.empty()) p.fail("a tensor has an empty name");
        if (!info.is_object()) p.fail("tensor '", name, "' must be an object {dtype, shape, data_offsets}, got ", brief(info));
        for (const char* key : {"dtype", "shape", "data_offsets"})
            if (!info.contains(key)) p.fail("tensor '", name, "' has no '", key, "'");
        const auto& dt = info["dtype"];
        if (!dt.is_string()) p.fail("tensor '", name, "': dtype must be a string, got ", brief(dt));
        const auto dtype = parse_dtype(dt.get<std::string>());
        if (!dtype) p.fail("tensor '", name, "': unknown dtype '", dt.get<std::string>(), "'");
        const auto& sh = info["shape"];
        if (!sh.is_array()) p.fail("tensor '", name, "': shape must be an array, got ", brief(sh));
        Entry e{name, *dtype, {}, 0, 0};
        for (const auto& d : sh) {
            const std::uint64_t v = unsigned_number(d, p, name, "shape");
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) p.fail("tensor '", name, "': dimension ", v, " is too large");
            e.shape.push_back(static_cast<std::int64_t>(v));
        }
        const auto& off = info["data_offsets"];
        if (!off.is_array() || off.size() != 2) p.fail("tensor '", name, "': data_offsets must be [begin, end], got ", brief(off));
        e.begin = unsigned_number(off[0], p, name, "data_offsets");
        e.end = unsigned_number(off[1], p, name, "data_offsets");
        if (e.end < e.begin) p.fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin");
        const auto count = element_count(e.shape);
        if (!count || *count * dtype_size(e.dtype) != e.end - e.begin)
            p.fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin, " bytes, shape ", shape_text(e.shape),
                   " of ", dtype_name(e.dtype), " needs ", count ? std::to_string(*count * dtype_size(e.dtype)) : std::string("more than 2^61"));
        if (e.end > buffer) p.fail("is truncated: tensor '", name, "' ends at byte ", e.end, " of the data, which holds ", buffer, " bytes");
        entries.push_back(std::move(e));
    }
    // The tensors must tile the buffer: sorted by offsets, each begins where the previous ended.
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& c) { return std::tie(a.begin, a.end) < std::tie(c.begin, c.end); });
    std::uint64_t at = 0;
    const Entry* previous = nullptr;
    for (const Entry& e : entries) {
        if (e.begin < at) p.fail("tensors '", previous->name, "' and '", e.name, "' overlap (bytes [", previous->begin, ", ", previous->end, ") and [", e.begin, ", ", e.end, "))");
        if (e.begin > at)
            p.fail("gap in the data: bytes [", at, ", ", e.begin, ") before tensor '", e.name, "' belong to no tensor");
        at = e.end;
        previous = &e;
    }
    if (at != buffer) p.fail("the data holds ", buffer, " bytes but the tensors cover ", at, " (bytes after the last tensor)");
    const unsigned char* data = b.data() + 8 + n;
    for (Entry& e : entries)
        out.insert(e.name, Tensor{e.dtype, std::move(e.shape), std::vector<unsigned char>(data + e.begin, data + e.end)});
    return out;
}
}  // namespace st_impl

/// Parses safetensors bytes held in memory; fmd::io_error naming `name` and the tensor or field at
/// fault (see read_safetensors).
inline SafeTensors parse_safetensors(std::span<const char> bytes, std::string_view name = "bytes") {
    return st_impl::parse({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}, {"io::parse_safetensors", "bytes", name});
}

/// Reads a safetensors file. fmd::io_error naming 'path' and the tensor or field: a missing file, a
/// header length beyond the file or above 100 MB, a header that is not a JSON object or has a
/// repeated key, a tensor without dtype / shape / data_offsets, an unknown dtype, offsets whose
/// size does not match shape × dtype, tensors that overlap, leave a gap or run past the end
/// (truncated), bytes after the last tensor, non-string metadata.
inline SafeTensors read_safetensors(const std::string& path) {
    constexpr std::string_view where = "io::read_safetensors";
    const std::vector<char> raw = detail::read_file(path, where);
    return st_impl::parse({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()}, {where, "path", path});
}

/// The file's bytes: the header padded with spaces to a multiple of 8 (so the data is aligned),
/// the tensors in the data by decreasing element size, then by name (aligned for their dtype).
inline std::vector<char> serialize_safetensors(const SafeTensors& file) {
    std::vector<std::pair<const std::string*, const Tensor*>> order;
    for (const auto& [name, t] : file) order.emplace_back(&name, &t);
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return dtype_size(a.second->dtype) > dtype_size(b.second->dtype); });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
    std::uint64_t offset = 0;
    for (const auto& [name, t] : order) {
        header[*name] = {{"dtype", std::string(dtype_name(t->dtype))}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->data.size()}}};
        offset += t->data.size();
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {  // JSON strings must be UTF-8
        detail::fail("io::serialize_safetensors", "file", "holds a tensor name or metadata that is not valid UTF-8 (", e.what(), ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    std::vector<char> out(8 + text.size());
    st_impl::store_le(reinterpret_cast<unsigned char*>(out.data()), text.size(), 8);
    std::memcpy(out.data() + 8, text.data(), text.size());
    out.reserve(out.size() + offset);
    for (const auto& [name, t] : order) out.insert(out.end(), t->data.begin(), t->data.end());
    return out;
}

/// Writes a safetensors file durably and atomically (core/file.hpp: temporary file, fsync, rename);
/// fmd::invalid_argument naming 'file' for a name or metadata that is not valid UTF-8.
inline void write_safetensors(const std::string& path, const SafeTensors& file) {
    const std::vector<char> bytes = serialize_safetensors(file);
    detail::write_file_atomic(path, bytes, "io::write_safetensors");
}

// ---------------------------------------------------------------------------------------------
// Named tensors inside a flat parameter buffer

/// Element order of a tensor inside a flat buffer. row_major: as in the file (C order).
/// column_major: Eigen's order, element (i0, i1, …) at offset + i0 + i1·d0 + i2·d0·d1 + …
/// (a 2-D weight W(r, c) at offset + r + c·rows, like nn::Linear).
enum class Order : std::uint8_t { row_major, column_major };

/// A named tensor inside a flat buffer: its file-side (row-major) shape, first element and order.
struct ParameterView {
    std::string name;                 ///< tensor name in the file
    std::vector<std::int64_t> shape;  ///< file-side (row-major) shape
    Index offset = 0;                 ///< buffer index of the first element
    Order order = Order::row_major;   ///< element order inside the buffer
    /// Number of elements.
    Index size() const {
        Index n = 1;
        for (auto d : shape) n *= static_cast<Index>(d);
        return n;
    }
};

/// The named tensors of a flat parameter buffer (a user's own network describes its buffer with
/// one add() per tensor, in buffer order).
class ParameterLayout {
public:
    /// Appends a view right after the furthest one so far.
    ParameterLayout& add(std::string name, std::vector<std::int64_t> shape, Order order = Order::row_major) {
        return add_at(std::move(name), std::move(shape), end_, order);
    }
    /// Adds a view at an explicit offset. fmd::invalid_argument for an empty or repeated name, a
    /// negative dimension or offset, or a view overlapping another.
    ParameterLayout& add_at(std::string name, std::vector<std::int64_t> shape, Index offset, Order order = Order::row_major) {
        constexpr std::string_view where = "io::ParameterLayout::add";
        if (name.empty() || name == "__metadata__") detail::fail(where, "name", "must be non-empty and not '__metadata__'");
        if (find(name)) detail::fail(where, "name", "'", name, "' is already in the layout");
        if (offset < 0) detail::fail(where, "offset", "must be >= 0, got ", offset, " for '", name, "'");
        const auto count = st_impl::element_count(shape);
        if (!count || *count > static_cast<std::uint64_t>(std::numeric_limits<Index>::max() / 2))
            detail::fail(where, "shape", st_impl::shape_text(shape), " of '", name, "' has a negative dimension or too many elements");
        const Index size = static_cast<Index>(*count);
        for (const ParameterView& v : views_)
            if (size > 0 && v.size() > 0 && offset < v.offset + v.size() && v.offset < offset + size)
                detail::fail(where, "offset", "'", name, "' at [", offset, ", ", offset + size, ") overlaps '", v.name, "' at [", v.offset, ", ",
                             v.offset + v.size(), ")");
        views_.push_back({std::move(name), std::move(shape), offset, order});
        end_ = std::max(end_, offset + size);
        return *this;
    }
    /// One past the last element any view uses: the smallest buffer the layout fits.
    Index end() const { return end_; }
    /// The views, in the order they were added.
    const std::vector<ParameterView>& views() const { return views_; }
    /// The view called `name`, or nullptr.
    const ParameterView* find(std::string_view name) const {
        for (const auto& v : views_)
            if (v.name == name) return &v;
        return nullptr;
    }

private:
    std::vector<ParameterView> views_;
    Index end_ = 0;
};

namespace st_impl {
// Calls f(file_index, buffer_index) for every element of view v (file order is row-major).
template <class F>
void for_each_element(const ParameterView& v, F&& f) {
    const Index n = v.size();
    if (v.order == Order::row_major || v.shape.size() < 2) {
        for (Index i = 0; i < n; ++i) f(i, v.offset + i);
        return;
    }
    if (v.shape.size() == 2) {  // a weight matrix: W(r, c) at offset + r + c·rows
        const Index rows = static_cast<Index>(v.shape[0]), cols = static_cast<Index>(v.shape[1]);
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) f(r * cols + c, v.offset + r + c * rows);
        return;
    }
    const std::size_t rank = v.shape.size();
    std::vector<Index> idx(rank, 0), stride(rank, 1);
    for (std::size_t k = 1; k < rank; ++k) stride[k] = stride[k - 1] * static_cast<Index>(v.shape[k - 1]);
    Index at = v.offset;
    for (Index i = 0; i < n; ++i) {
        f(i, at);
        for (std::size_t k = rank; k-- > 0;) {  // row-major counter: the last index runs fastest
            at += stride[k];
            if (++idx[k] < v.shape[k]) break;
            at -= stride[k] * static_cast<Index>(v.shape[k]);
            idx[k] = 0;
        }
    }
}

inline void check_fits(std::string_view where, const ParameterLayout& layout, Index buffer) {
    if (layout.end() > buffer)
        detail::fail(where, "buffer", "holds ", buffer, " parameters, the layout needs ", layout.end());
}

// Checks the tensors against the layout and converts them into a copy of `current`; nothing is
// written to the caller's buffer here.
template <class S>
std::vector<S> stage(std::string_view where, std::string_view argument, const SafeTensors& file, const ParameterLayout& layout,
                     std::span<const S> current, bool strict) {
    check_fits(where, layout, static_cast<Index>(current.size()));
    if (strict)
        for (const auto& [name, t] : file)
            if (!layout.find(name)) detail::fail_io(where, argument, "tensor '", name, "' is not a parameter of the model (unknown name)");
    for (const ParameterView& v : layout.views()) {
        const Tensor* t = file.find(v.name);
        if (t == nullptr) detail::fail_io(where, argument, "tensor '", v.name, "' is missing");
        if (t->shape != v.shape)
            detail::fail_io(where, argument, "tensor '", v.name, "' has shape ", shape_text(t->shape), ", the model expects ", shape_text(v.shape));
        if (!is_floating(t->dtype))
            detail::fail_io(where, argument, "tensor '", v.name, "' has dtype ", dtype_name(t->dtype), ", not convertible to a floating-point parameter");
    }
    std::vector<S> staged(current.begin(), current.end());
    for (const ParameterView& v : layout.views()) {
        const Tensor& t = *file.find(v.name);
        const std::vector<S> values = t.values<S>();
        for_each_element(v, [&](Index i, Index at) {
            const S s = values[static_cast<std::size_t>(i)];
            if (!std::isfinite(s)) {
                const double x = t.value(static_cast<std::size_t>(i));
                detail::fail_io(where, argument, "tensor '", v.name, "' element ", i, " is ", x,
                                std::isfinite(x) ? ", beyond the range of the model's scalar" : ", not finite");
            }
            staged[static_cast<std::size_t>(at)] = s;
        });
    }
    return staged;
}
}  // namespace st_impl

/// Tensors of `layout` read out of `buffer` (each in the file's row-major order), stored as `dtype`
/// (F16, BF16, F32 or F64; narrower ones rounded to nearest even). fmd::invalid_argument when the
/// layout does not fit the buffer or a finite value overflows the dtype (naming the tensor).
template <class S>
SafeTensors to_safetensors(const ParameterLayout& layout, std::span<const S> buffer, DType dtype = DType::f32) {
    constexpr std::string_view where = "io::to_safetensors";
    st_impl::check_fits(where, layout, static_cast<Index>(buffer.size()));
    if (!is_floating(dtype)) detail::fail(where, "dtype", "must be F16, BF16, F32 or F64, got ", dtype_name(dtype));
    SafeTensors out;
    std::vector<S> values;
    for (const ParameterView& v : layout.views()) {
        values.resize(static_cast<std::size_t>(v.size()));
        st_impl::for_each_element(v, [&](Index i, Index at) { values[static_cast<std::size_t>(i)] = buffer[static_cast<std::size_t>(at)]; });
        Tensor t = Tensor::from_values<S>(dtype, v.shape, values);
        for (std::size_t i = 0; i < values.size(); ++i)
            if (std::isfinite(values[i]) && !std::isfinite(t.value(i)))
                detail::fail(where, "dtype", dtype_name(dtype), " cannot hold ", values[i], " (element ", i, " of tensor '", v.name, "')");
        out.insert(v.name, std::move(t));
    }
    return out;
}

/// Same for a network's parameters() (a Map of its flat buffer).
template <class S>
SafeTensors to_safetensors(const ParameterLayout& layout, const Eigen::Map<Vector<S>>& buffer, DType dtype = DType::f32) {
    return to_safetensors<S>(layout, std::span<const S>(buffer.data(), static_cast<std::size_t>(buffer.size())), dtype);
}
template <class S>
SafeTensors to_safetensors(const ParameterLayout& layout, const Eigen::Map<const Vector<S>>& buffer, DType dtype = DType::f32) {
    return to_safetensors<S>(layout, std::span<const S>(buffer.data(), static_cast<std::size_t>(buffer.size())), dtype);
}

/// Copies the tensors of `file` into `buffer` through `layout`, all or nothing: fmd::io_error
/// naming the tensor for a name the layout does not know (unless strict = false), a missing
/// tensor, a shape mismatch, a dtype that is not F16 / BF16 / F32 / F64, a value that is not
/// finite (or overflows S); the buffer is unchanged on any error.
template <class S>
void load_parameters(const SafeTensors& file, const ParameterLayout& layout, std::span<S> buffer, bool strict = true) {
    const std::vector<S> staged = st_impl::stage<S>("io::load_parameters", "file", file, layout, buffer, strict);
    std::copy(staged.begin(), staged.end(), buffer.begin());
}
/// Same into a network's parameters() (a Map of its flat buffer).
template <class S>
void load_parameters(const SafeTensors& file, const ParameterLayout& layout, Eigen::Map<Vector<S>> buffer, bool strict = true) {
    load_parameters<S>(file, layout, std::span<S>(buffer.data(), static_cast<std::size_t>(buffer.size())), strict);
}

// ---------------------------------------------------------------------------------------------
// nn::MLP

/// The tensor names of nn::MLP (see the header comment) over its flat parameter buffer.
template <class S>
ParameterLayout mlp_layout(const nn::MLP<S>& net) {
    using M = nn::MLP<S>;
    const nn::MLPConfig& c = net.config();
    ParameterLayout layout;
    auto linear = [&](const std::string& name, Index layer, Index out, Index in) {
        const Index at = net.layer_offset(layer);
        layout.add_at(name + ".weight", {out, in}, at, Order::column_major);
        layout.add_at(name + ".bias", {out}, at + out * in);
    };
    linear("in_projection", M::input_layer, c.width, c.dim);
    linear("t_projection", M::time_layer, c.width, c.time.channels);
    for (Index k = 1; k <= c.depth; ++k) linear("blocks." + std::to_string(k - 1) + ".0", M::hidden_layer(k), c.width, c.width);
    linear("out_projection", net.output_layer(), c.out_dim, c.width);
    if (c.two_times) linear("interval_projection", net.interval_layer(), c.width, c.time.channels);
    // The table is width x (C + 1) column-major: column y (class y's embedding) is contiguous,
    // i.e. row y of a row-major [C + 1, width] torch.nn.Embedding weight.
    if (c.num_classes > 0) layout.add_at("class_embedding.weight", {c.num_classes + 1, c.width}, net.class_table_offset());
    return layout;
}

/// The MLP's weights as safetensors (F32 by default), with metadata "format" = "pt" and
/// "fmd.mlp" = net.describe().
template <class S>
SafeTensors mlp_tensors(const nn::MLP<S>& net, DType dtype = DType::f32) {
    const auto p = net.parameters();
    SafeTensors out = to_safetensors<S>(mlp_layout(net), std::span<const S>(p.data(), static_cast<std::size_t>(p.size())), dtype);
    out.metadata["format"] = "pt";
    out.metadata["fmd.mlp"] = net.describe();
    return out;
}

/// Writes the MLP's weights to a safetensors file (durable, atomic).
template <class S>
void save_mlp(const std::string& path, const nn::MLP<S>& net, DType dtype = DType::f32) {
    write_safetensors(path, mlp_tensors(net, dtype));
}

namespace st_impl {
template <class S>
void load_mlp(const SafeTensors& file, nn::MLP<S>& net, std::string_view where, std::string_view argument) {
    auto p = net.parameters();
    const std::span<S> buffer(p.data(), static_cast<std::size_t>(p.size()));
    const std::vector<S> staged = st_impl::stage<S>(where, argument, file, mlp_layout(net), buffer, true);
    if (const auto it = file.metadata.find("fmd.mlp"); it != file.metadata.end() && it->second != net.describe())
        detail::fail_io(where, argument, "metadata 'fmd.mlp' is ", it->second, ", the network is ", net.describe());
    std::copy(staged.begin(), staged.end(), buffer.begin());
}
}  // namespace st_impl

/// Loads weights into the MLP, all or nothing (load_parameters' checks, then: a file saved by
/// fmd whose "fmd.mlp" configuration differs from the network's); the parameters are unchanged on
/// any error. Gradients and workspaces are left as they are.
template <class S>
void load_mlp(const SafeTensors& file, nn::MLP<S>& net) {
    st_impl::load_mlp(file, net, "io::load_mlp", "file");
}

/// Reads a safetensors file into the MLP (read_safetensors' and load_mlp's errors, naming 'path').
template <class S>
void load_mlp(const std::string& path, nn::MLP<S>& net) {
    st_impl::load_mlp(read_safetensors(path), net, "io::load_mlp", "path");
}

}  // namespace fmd::io

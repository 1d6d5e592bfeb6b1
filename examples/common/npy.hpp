#pragma once
// Writes the examples' results as NumPy .npy files (format 1.0) and a small JSON file of scalars
// and labels, for the plotting scripts in examples/plots/ (matplotlib). Not part of the library.
//
//   npy::save(dir + "/samples.npy", x);        // Eigen matrix (rows, cols): np.load(...)[r, c] == x(r, c)
//   npy::save(dir + "/loss.npy", losses);      // std::vector of numbers: 1-D
//   npy::save(dir + "/paths.npy", rec.states); // std::vector of equal-shape matrices: (count, rows, cols)
//   npy::Json info; info.add("filled", 0.85).add("title", "1 NFE"); info.save(dir + "/info.json");
//
// Missing parent directories are created; a file that cannot be written throws std::runtime_error
// naming it.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

namespace npy {

namespace detail {

template <class T>
constexpr bool is_eigen = std::is_base_of_v<Eigen::MatrixBase<T>, T>;

/// The dtype string of a scalar type ('<f4', '<f8', '<i4', …); native byte order, which np.load honours.
template <class T>
std::string descr() {
    constexpr char order = std::endian::native == std::endian::little ? '<' : '>';
    if constexpr (std::is_same_v<T, float>) return std::string(1, order) + "f4";
    else if constexpr (std::is_same_v<T, double>) return std::string(1, order) + "f8";
    else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, char> && (sizeof(T) == 4 || sizeof(T) == 8))
        return std::string(1, order) + (sizeof(T) == 4 ? "i4" : "i8");
    else static_assert(sizeof(T) == 0, "npy::save: float, double, int32, int64 or uint8 elements only");
}

inline void make_parent(const std::string& path) {
    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("npy: cannot create the directory of " + path + ": " + ec.message());
}

/// Header and data: magic, version 1.0, header length, the dict padded with spaces so that the
/// data starts at a multiple of 64 bytes, then the raw elements.
inline void write(const std::string& path, const std::string& descr, bool fortran, const std::vector<long long>& shape, const void* data,
                  std::size_t bytes) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (";
    for (std::size_t i = 0; i < shape.size(); ++i) dict += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
    dict += "), }";
    const std::size_t preamble = 10, total = (preamble + dict.size() + 1 + 63) / 64 * 64;  // + 1: the closing newline
    dict.append(total - preamble - dict.size() - 1, ' ');
    dict += '\n';
    if (dict.size() > 65535) throw std::runtime_error("npy: header too long for format 1.0 in " + path);
    make_parent(path);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    const unsigned char head[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    const unsigned char len[2] = {static_cast<unsigned char>(dict.size() & 0xff), static_cast<unsigned char>(dict.size() >> 8)};
    f.write(reinterpret_cast<const char*>(head), 8);
    f.write(reinterpret_cast<const char*>(len), 2);
    f.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    if (bytes > 0) f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    f.close();
    if (!f) throw std::runtime_error("npy: cannot write " + path);
}

}  // namespace detail

/// A matrix (or any Eigen expression) with shape (rows, cols): element (r, c) is m(r, c).
template <class Derived>
void save(const std::string& path, const Eigen::MatrixBase<Derived>& m) {
    using T = typename Derived::Scalar;
    // Column-major storage written as is, flagged fortran_order.
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> plain = m;
    detail::write(path, detail::descr<T>(), true, {static_cast<long long>(plain.rows()), static_cast<long long>(plain.cols())}, plain.data(),
                  static_cast<std::size_t>(plain.size()) * sizeof(T));
}

/// A vector of numbers as a 1-D array; a vector of equal-shape Eigen matrices (e.g. the states of
/// a trajectory) as a 3-D array (count, rows, cols).
template <class T>
void save(const std::string& path, const std::vector<T>& v) {
    if constexpr (detail::is_eigen<T>) {
        using E = typename T::Scalar;
        const long long rows = v.empty() ? 0 : v.front().rows(), cols = v.empty() ? 0 : v.front().cols();
        std::vector<E> data;
        data.reserve(v.size() * static_cast<std::size_t>(rows * cols));
        for (const auto& m : v) {
            if (m.rows() != rows || m.cols() != cols) throw std::runtime_error("npy: matrices of different shapes for " + path);
            for (Eigen::Index r = 0; r < rows; ++r)
                for (Eigen::Index c = 0; c < cols; ++c) data.push_back(m(r, c));  // C order
        }
        detail::write(path, detail::descr<E>(), false, {static_cast<long long>(v.size()), rows, cols}, data.data(), data.size() * sizeof(E));
    } else {
        detail::write(path, detail::descr<T>(), false, {static_cast<long long>(v.size())}, v.data(), v.size() * sizeof(T));
    }
}

/// Scalars, strings and lists of them for the plotting script (titles that depend on results),
/// written as one JSON object in the order added.
class Json {
public:
    /// A number (integers exactly, floating point with 17 digits) or a bool.
    template <class N>
        requires std::is_arithmetic_v<N>
    Json& add(const std::string& key, N value) { return put(key, scalar(value)); }
    Json& add(const std::string& key, const std::string& value) { return put(key, quote(value)); }
    Json& add(const std::string& key, const char* value) { return put(key, quote(value)); }
    template <class N>
        requires std::is_arithmetic_v<N>
    Json& add(const std::string& key, const std::vector<N>& values) { return list(key, values, [](N x) { return scalar(x); }); }
    Json& add(const std::string& key, const std::vector<std::string>& values) { return list(key, values, quote); }

    std::string str() const { return "{" + body_ + "\n}\n"; }
    void save(const std::string& path) const {
        detail::make_parent(path);
        std::ofstream f(path, std::ios::trunc);
        f << str();
        f.close();
        if (!f) throw std::runtime_error("npy: cannot write " + path);
    }

private:
    std::string body_;

    Json& put(const std::string& key, const std::string& value) {
        body_ += (body_.empty() ? "\n  " : ",\n  ") + quote(key) + ": " + value;
        return *this;
    }
    template <class V, class F>
    Json& list(const std::string& key, const V& values, F f) {
        std::string s = "[";
        for (std::size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + f(values[i]);
        return put(key, s + "]");
    }
    // NaN and infinities as Python's json module reads them.
    template <class N>
    static std::string scalar(N v) {
        if constexpr (std::is_same_v<N, bool>) return v ? "true" : "false";
        else if constexpr (std::is_integral_v<N>) return std::to_string(v);
        else return number(static_cast<double>(v));
    }
    static std::string number(double x) {
        if (std::isnan(x)) return "NaN";
        if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", x);
        return buf;
    }
    static std::string quote(const std::string& s) {
        std::string q = "\"";
        for (const char ch : s) {
            if (ch == '"' || ch == '\\') q += {'\\', ch};
            else if (static_cast<unsigned char>(ch) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
                q += buf;
            } else q += ch;
        }
        return q + "\"";
    }
};

}  // namespace npy

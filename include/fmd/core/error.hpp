#pragma once
// fmd::error and the argument checks every public entry point uses.
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fmd {

/// Thrown for every bad input. The message names the argument and what was expected.
class error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

template <class... Parts>
[[noreturn]] void fail(std::string_view where, std::string_view argument, const Parts&... parts) {
    std::ostringstream os;
    os << "fmd::" << where << ": argument '" << argument << "' ";
    (os << ... << parts);
    throw error(os.str());
}

inline void require_time(std::string_view where, std::string_view argument, double t) {
    if (!(t >= 0.0 && t <= 1.0)) fail(where, argument, "must lie in [0, 1], got ", t);
}

inline void require_positive_count(std::string_view where, std::string_view argument, long n) {
    if (n <= 0) fail(where, argument, "must be positive, got ", n);
}

template <class A, class B>
void require_same_shape(std::string_view where, std::string_view name_a, const A& a,
                        std::string_view name_b, const B& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols())
        fail(where, name_b, "must have the shape of '", name_a, "' (", a.rows(), " x ", a.cols(),
             "), got ", b.rows(), " x ", b.cols());
}

template <class A>
void require_nonempty(std::string_view where, std::string_view argument, const A& a) {
    if (a.rows() == 0 || a.cols() == 0)
        fail(where, argument, "must be a non-empty dim x n batch, got ", a.rows(), " x ", a.cols());
}

template <class A>
void require_finite(std::string_view where, std::string_view argument, const A& a) {
    if (!a.allFinite()) fail(where, argument, "contains a non-finite value (NaN or Inf)");
}

}  // namespace detail
}  // namespace fmd

#pragma once
// The exception hierarchy and the argument checks every public entry point uses.
//
//   fmd::error                  base of everything fmd throws (catch this to catch all)
//   ├─ fmd::invalid_argument    a bad input: shape, range, option, label, grid, a singular time
//   ├─ fmd::numerical_error     a computation that stopped being finite or cannot proceed
//   │                           (training divergence, a non-finite state, an iteration cap reached)
//   └─ fmd::io_error            a file that cannot be read or written, or is not in the expected format
//
// Every message starts "fmd::<function>: argument '<name>' …", naming the argument at fault.
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fmd {

/// Base of every exception fmd throws. The message names the function and the argument at fault.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A bad input: wrong shape, value out of range, inconsistent options.
class invalid_argument : public error {
public:
    using error::error;
};

/// A numerical failure: a loss, gradient, weight or state that became non-finite, or a
/// computation that cannot continue (such as an iteration cap reached without convergence).
class numerical_error : public error {
public:
    using error::error;
};

/// A file that cannot be opened, read or written, or whose content is not in the expected format
/// (bad magic, truncated, corrupted checksum, trailing bytes).
class io_error : public error {
public:
    using error::error;
};

namespace detail {

template <class... Parts>
std::string message(std::string_view where, std::string_view argument, const Parts&... parts) {
    std::ostringstream os;
    os << "fmd::" << where << ": argument '" << argument << "' ";
    (os << ... << parts);
    return os.str();
}

/// Throws fmd::invalid_argument.
template <class... Parts>
[[noreturn]] void fail(std::string_view where, std::string_view argument, const Parts&... parts) {
    throw invalid_argument(message(where, argument, parts...));
}

/// Throws fmd::numerical_error.
template <class... Parts>
[[noreturn]] void fail_numerical(std::string_view where, std::string_view argument, const Parts&... parts) {
    throw numerical_error(message(where, argument, parts...));
}

/// Throws fmd::io_error.
template <class... Parts>
[[noreturn]] void fail_io(std::string_view where, std::string_view argument, const Parts&... parts) {
    throw io_error(message(where, argument, parts...));
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

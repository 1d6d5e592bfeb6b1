#pragma once
// Whether a stdio stream is an interactive terminal (progress lines redraw in place there and
// print plain lines otherwise). Portable: POSIX isatty, the Windows CRT's _isatty, else "no".
#include <cstdio>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#elif defined(_WIN32)
#include <io.h>
#endif

namespace fmd::detail {

inline bool is_terminal(std::FILE* stream) {
    if (stream == nullptr) return false;
#if defined(__unix__) || defined(__APPLE__)
    return ::isatty(::fileno(stream)) != 0;
#elif defined(_WIN32)
    return ::_isatty(::_fileno(stream)) != 0;
#else
    return false;
#endif
}

}  // namespace fmd::detail

#pragma once
// Heap-allocation detectors of the fmd_alloc_tests program. Include this header FIRST in every
// translation unit of that program (before any Eigen, fmd or Catch header).
//
// Three detectors:
//  1. A replacement global operator new/delete (all sixteen replaceable forms, including the
//     aligned and nothrow ones) counts every C++ heap allocation: std::vector, std::string,
//     std::ostringstream, exceptions' messages, ...
//  2. Eigen allocates through std::malloc, not operator new, so (1) does not see it. With
//     EIGEN_RUNTIME_NO_MALLOC every Eigen heap allocation calls check_that_malloc_is_allowed(),
//     which asserts Eigen::internal::is_malloc_allowed(). eigen_assert is a no-op under NDEBUG
//     (the optimized builds), so this header defines eigen_assert itself: a failed malloc check is
//     counted, any other failed Eigen assertion aborts with its text.
//  3. On glibc, malloc / calloc / realloc themselves are interposed (forwarding to __libc_malloc
//     & co.): that sees every heap allocation, Eigen's, operator new's, anyone's.
// Defining FMD_TEST_NO_NEW_COUNTER leaves only (2), for a build whose sanitizer owns operator new
// and malloc (the project's sanitizer build skips these tests). tests/alloc/no_allocation.cpp
// shows each detector fires.
//
// Why a header plus counter.cpp:
//  - EIGEN_RUNTIME_NO_MALLOC and eigen_assert change the bodies of Eigen's inline functions. The
//    linker keeps ONE copy of each, from whichever translation unit it meets first, so every
//    translation unit of the program must see the same prelude (one definition rule) — hence
//    "include first, everywhere", and the #error below if Eigen came earlier.
//  - A replacement allocation function must be defined in exactly one translation unit and may
//    not be inline ([replacement.functions]), so operator new/delete and the malloc interposer
//    live in counter.cpp, compiled once into the program. The counters they bump are declared
//    extern here and defined there: a program that forgets counter.cpp fails to link instead of
//    counting nothing.
#ifdef EIGEN_WORLD_VERSION
#error "tests/alloc/counter.hpp must be included before any Eigen (or fmd) header"
#endif

#define EIGEN_RUNTIME_NO_MALLOC 1

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace alloc_test {
inline long eigen_mallocs = 0;  // Eigen heap allocations while forbidden
[[noreturn]] inline void eigen_assertion_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: Eigen assertion failed: %s\n", file, line, expr);
    std::abort();
}
inline void eigen_check_failed(const char* expr, const char* file, int line) {
    if (std::strstr(expr, "heap allocation is forbidden") != nullptr) ++eigen_mallocs;
    else eigen_assertion_failed(expr, file, line);
}
}  // namespace alloc_test
// Like assert: the handler runs only when the condition fails.
#define eigen_assert(x) ((x) ? static_cast<void>(0) : ::alloc_test::eigen_check_failed(#x, __FILE__, __LINE__))

#include <atomic>

#include <Eigen/Core>
#include <catch2/catch.hpp>

// <cstdio> has included glibc's <features.h> by now, so __GLIBC__ is known here and in counter.cpp.
#if defined(__GLIBC__) && !defined(FMD_TEST_NO_NEW_COUNTER)
#define FMD_TEST_MALLOC_COUNTER 1
#endif

namespace alloc_test {

#ifndef FMD_TEST_NO_NEW_COUNTER
extern std::atomic<long> news;  // operator new calls (counter.cpp)
#endif
#ifdef FMD_TEST_MALLOC_COUNTER
extern std::atomic<long> mallocs;  // malloc / calloc / realloc calls (counter.cpp)
#endif

constexpr bool counting_new =
#ifdef FMD_TEST_NO_NEW_COUNTER
    false;
#else
    true;
#endif

constexpr bool counting_malloc =
#ifdef FMD_TEST_MALLOC_COUNTER
    true;
#else
    false;
#endif

inline long new_count() {
#ifdef FMD_TEST_NO_NEW_COUNTER
    return 0;
#else
    return news.load(std::memory_order_relaxed);
#endif
}

inline long malloc_count() {
#ifdef FMD_TEST_MALLOC_COUNTER
    return mallocs.load(std::memory_order_relaxed);
#else
    return 0;
#endif
}

struct Allocations {
    long news = 0;           // global operator new calls (0 when not counted)
    long eigen_mallocs = 0;  // Eigen heap allocations
    long mallocs = 0;        // malloc / calloc / realloc calls (0 when not counted)
};

/// Runs f with Eigen's heap forbidden and returns the allocations it made. No Catch macro may
/// run inside f: Catch itself allocates while building messages.
template <class F>
Allocations count_allocations(F&& f) {
    const long news0 = new_count(), mallocs0 = malloc_count();
    const long eigen0 = eigen_mallocs;
    Eigen::internal::set_is_malloc_allowed(false);
    f();
    Eigen::internal::set_is_malloc_allowed(true);
    return {new_count() - news0, eigen_mallocs - eigen0, malloc_count() - mallocs0};
}

}  // namespace alloc_test

/// Asserts that an Allocations result is all zeros (the uncounted detectors read 0).
#define CHECK_NO_ALLOCATIONS(counts)                                                                                        \
    do {                                                                                                                    \
        const ::alloc_test::Allocations c_ = (counts);                                                                      \
        INFO("operator new calls: " << c_.news << (::alloc_test::counting_new ? "" : " (not counted here)")                \
                                    << ", Eigen mallocs: " << c_.eigen_mallocs << ", malloc calls: " << c_.mallocs          \
                                    << (::alloc_test::counting_malloc ? "" : " (not counted here)"));                       \
        CHECK(c_.news == 0);                                                                                                \
        CHECK(c_.eigen_mallocs == 0);                                                                                       \
        CHECK(c_.mallocs == 0);                                                                                             \
    } while (false)

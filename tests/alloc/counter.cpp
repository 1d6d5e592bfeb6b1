// The replacement global allocation functions of the fmd_alloc_tests program (see counter.hpp for
// why they live in this one translation unit). Sanitizer builds (FMD_TEST_NO_NEW_COUNTER) replace
// nothing: ASan supplies its own operator new and malloc.
#include "counter.hpp"

#include <cstddef>
#include <new>

#ifndef FMD_TEST_NO_NEW_COUNTER
namespace alloc_test {
std::atomic<long> news{0};

namespace {
void* allocate(std::size_t n) {
    news.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* allocate_aligned(std::size_t n, std::align_val_t al) {
    news.fetch_add(1, std::memory_order_relaxed);
    std::size_t a = static_cast<std::size_t>(al);
    if (a < sizeof(void*)) a = sizeof(void*);
    const std::size_t size = ((n == 0 ? 1 : n) + a - 1) / a * a;  // aligned_alloc: a multiple of a
    if (void* p = std::aligned_alloc(a, size)) return p;
    throw std::bad_alloc();
}
}  // namespace
}  // namespace alloc_test

void* operator new(std::size_t n) { return alloc_test::allocate(n); }
void* operator new[](std::size_t n) { return alloc_test::allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return alloc_test::allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return alloc_test::allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new(std::size_t n, std::align_val_t a) { return alloc_test::allocate_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return alloc_test::allocate_aligned(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return alloc_test::allocate_aligned(n, a);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return alloc_test::allocate_aligned(n, a);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
#endif

#ifdef FMD_TEST_MALLOC_COUNTER
namespace alloc_test {
std::atomic<long> mallocs{0};
}

// glibc's own entry points: the interposed functions below forward to them.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t size) noexcept {
    alloc_test::mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
    alloc_test::mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
    alloc_test::mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, size);
}
void free(void* p) noexcept { __libc_free(p); }
}
#endif

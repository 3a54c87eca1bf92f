// SPDX-License-Identifier: MIT
// Replaces the global operator new/delete of the binary it is linked into with versions that
// count, per thread, what is allocated. malloc/free do the work, so sanitizers still see it.
#include "support/alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t t_allocated = 0;
thread_local std::size_t t_largest = 0;

void* counted_or_null(std::size_t n) noexcept {
  t_allocated += n;
  if (n > t_largest) {
    t_largest = n;
  }
  return std::malloc(n == 0 ? 1 : n);
}

void* counted(std::size_t n) {
  if (void* p = counted_or_null(n)) {
    return p;
  }
  throw std::bad_alloc();
}
}  // namespace

// Every plain form is replaced, nothrow ones too, so that whatever allocates with one form and
// frees with another (libFuzzer does) stays on malloc/free. The aligned forms are left alone.
void* operator new(std::size_t n) { return counted(n); }
void* operator new[](std::size_t n) { return counted(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_or_null(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_or_null(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace mpotr::test {

AllocationScope::AllocationScope() : m_start_bytes(t_allocated), m_saved_largest(t_largest) { t_largest = 0; }
AllocationScope::~AllocationScope() {
  if (m_saved_largest > t_largest) {
    t_largest = m_saved_largest;
  }
}
std::size_t AllocationScope::bytes() const noexcept { return t_allocated - m_start_bytes; }
std::size_t AllocationScope::largest() const noexcept { return t_largest; }

}  // namespace mpotr::test

// SPDX-License-Identifier: MIT
// Replaces the global operator new/delete of the binary it is linked into with versions that
// count, per thread, what is allocated. malloc/free do the work, so sanitizers still see it.
#include "support/alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t t_allocated = 0;
thread_local std::size_t t_largest = 0;

void* counted(std::size_t n) {
  t_allocated += n;
  if (n > t_largest) {
    t_largest = n;
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted(n); }
void* operator new[](std::size_t n) { return counted(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

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

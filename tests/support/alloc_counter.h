// SPDX-License-Identifier: MIT
// Counts the bytes this thread allocates through operator new while a scope is open, so a test
// can assert that a call costs no more memory than a bound (spec R-GEN-3). The counting
// operator new/delete live in alloc_counter.cpp; link it into a test binary to enable them.
#pragma once

#include <cstddef>

namespace mpotr::test {

// Bytes allocated (never minus frees) on this thread since the scope opened, and the largest
// single allocation.
class AllocationScope {
 public:
  AllocationScope();
  ~AllocationScope();
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;
  std::size_t bytes() const noexcept;
  std::size_t largest() const noexcept;

 private:
  std::size_t m_start_bytes;
  std::size_t m_saved_largest;
};

}  // namespace mpotr::test

# SPDX-License-Identifier: MIT
function(mpotr_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2)
  # GCC 12 at -O3 reports -Wrestrict and -Warray-bounds inside libstdc++'s inlined memcpy
  # (std::string "literal" + string, vector copies: GCC bugs 105329, 105651), false positives
  # fixed in GCC 13. Release builds only; -O2 builds (CI) keep both warnings as errors.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-Wno-restrict -Wno-array-bounds>)
  endif()
  if(MPOTR_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

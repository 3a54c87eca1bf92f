# SPDX-License-Identifier: MIT
function(mpotr_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2)
  if(MPOTR_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

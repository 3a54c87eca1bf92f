/* SPDX-License-Identifier: MIT */
/* v1 rules (spec/mpotr.md R-SD-10, R-SD-14, R-OFF-9): must FAIL with !(forged_entry_shown). */
#define V1
#include "mpotr.pml"

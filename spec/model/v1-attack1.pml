/* SPDX-License-Identifier: MIT */
/* v1 rules, the relay fakes bob's presence only (attack 1 as first described, README.md):
 * must FAIL with !(forged_entry_shown). */
#define V1
#define LIE_ABOUT 2
#include "mpotr.pml"

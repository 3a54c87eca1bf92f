/* SPDX-License-Identifier: MIT */
/* v2 rules, MAC under the group key, members may quit: must pass. */
#define V2
#define MAC
#define QUIT
#include "mpotr.pml"

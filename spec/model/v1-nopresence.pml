/* SPDX-License-Identifier: MIT */
/* v1 rules, the relay never fakes presence (every other power kept): must pass. */
#define V1
#define LIE_ABOUT 0
#include "mpotr.pml"

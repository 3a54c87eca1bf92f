/* SPDX-License-Identifier: MIT */
/* v2 rules without the MAC (the publication rule alone), members may quit: must pass. */
#define V2
#define QUIT
#include "mpotr.pml"

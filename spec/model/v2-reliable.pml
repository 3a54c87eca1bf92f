/* SPDX-License-Identifier: MIT */
/* v2 rules, MAC, an honest relay (every message once, in order per sender); carol may quit:
 * must pass, every member publishing its key or quitting. */
#define V2
#define MAC
#define QUIT
#define RELIABLE
#define QUITTERS 4
#include "mpotr.pml"

// SPDX-License-Identifier: MIT
// The participation marker's two states (spec ), shared by the host logic and the
// stanza builders without tying either to the other.
#pragma once

#include <cstdint>

namespace mpotr::transport {

enum class Marker : std::uint8_t {
  In,   // <mpotr xmlns='urn:mpotr:2'/>: takes part in the session
  Out,  // <mpotr xmlns='urn:mpotr:2' status='out'/>: uses mpOTR, stays out (refuses a member)
};

}  // namespace mpotr::transport

// Requests nua would not know: xsgw's own dialogs on nua's transaction layer (nta).
// Private to src/sip.
#pragma once

#include <functional>

struct nta_agent_s;
struct nta_leg_s;
struct nta_incoming_s;
struct sip_s;
struct msg_s;

namespace xsgw::sip::detail {

/// The default leg of one nua stack's nta agent: it gets every request that is in no dialog
/// nta knows. xsgw puts itself in front of nua there (src/sip/sofia_nta.cpp).
struct DefaultLeg {
    nta_agent_s* agent = nullptr;
    /// Looks at a request first: returns the status nta answers with (0: answered already),
    /// or -1 to hand it to nua. Empty: everything goes to nua.
    std::function<int(nta_incoming_s*, const sip_s*)> claim;
    /// Sees each request nua sends through this agent (nta_outgoing_mcreate) before it goes,
    /// and may change it. Empty: none.
    std::function<void(msg_s*)> outgoing;
};

/// The default leg nua made last and nobody took yet (nua_create makes it before it
/// returns), now the caller's; null when the hook did not run (a static Sofia-SIP).
DefaultLeg* take_default_leg();
/// Forgets a taken default leg once its nua stack is destroyed.
void release_default_leg(DefaultLeg* leg);

} // namespace xsgw::sip::detail

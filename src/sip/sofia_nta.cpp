// Issue 4: the subscriber role on nta, beside nua. A dialog nua keeps costs some 4 KiB of heap
// (its handle, its saved tags, an nta leg, a template of the refresh request, ...); xsgw keeps
// its own subscriptions' dialog state in a few hundred bytes and sends their requests through
// nta, the transaction layer nua runs on. nua gives its user no way to its nta agent, nor to the
// requests that arrive in a dialog nua does not know (the NOTIFYs of xsgw's subscriptions): nta
// hands every request outside the dialogs it knows to one "default leg", which nua makes in
// nua_stack_init() with its own callback, and nua answers such a NOTIFY 481.
//
// So the executable defines nta_leg_tcreate: libsofia-sip-ua calls it through its PLT (nua and
// nta are in the same library, but the symbol is exported), the dynamic linker binds that call to
// this definition, and this one calls Sofia's. When the leg just made is its agent's default
// leg, it is bound to a callback of ours that offers each request to the user agent first (a
// NOTIFY whose Call-ID is one of our subscriptions) and gives every other to nua's callback,
// unchanged. The agent comes with it. Nothing else changes for nua.
//
// F2 (P9): nua answers a watcher's SUBSCRIBE Expires: 0 itself and sends the final NOTIFY with
// the last body it sent (an open PIDF), before its user hears of it. nua sends every request
// with nta_outgoing_mcreate, through its PLT too: defined here, it shows the user agent each
// request first (DefaultLeg::outgoing), which puts the closed state in that NOTIFY.
#include "sofia_nta.hpp"

#include <cstdint>
#include <dlfcn.h>
#include <memory>
#include <sofia-sip/nta.h>
#include <sofia-sip/su_tagarg.h>
#include <vector>

namespace xsgw::sip::detail {
namespace {

struct Entry {
    DefaultLeg leg;
    nta_request_f* nua_callback = nullptr;
    nta_leg_magic_t* nua_magic = nullptr;
    bool taken = false;
};

// Default legs made and not yet released, in order; never destroyed (nua may make one while
// static objects are being destroyed).
auto& entries = *new std::vector<std::unique_ptr<Entry>>;

int offer(nta_leg_magic_t* magic, nta_leg_t* leg, nta_incoming_t* irq, const sip_t* sip) {
    auto* entry = reinterpret_cast<Entry*>(magic);
    if (entry->leg.claim) {
        const int status = entry->leg.claim(irq, sip);
        if (status >= 0) return status;
    }
    return entry->nua_callback(entry->nua_magic, leg, irq, sip);
}

} // namespace

DefaultLeg* take_default_leg() {
    if (entries.empty() || entries.back()->taken) return nullptr;
    entries.back()->taken = true;
    return &entries.back()->leg;
}

void release_default_leg(DefaultLeg* leg) {
    std::erase_if(entries, [leg](const std::unique_ptr<Entry>& e) { return &e->leg == leg; });
}

} // namespace xsgw::sip::detail

extern "C" __attribute__((visibility("default"), noinline)) nta_leg_t*
nta_leg_tcreate(nta_agent_t* agent, nta_request_f* callback, nta_leg_magic_t* magic, tag_type_t tag,
                tag_value_t value, ...) {
    using Function = nta_leg_t* (*)(nta_agent_t*, nta_request_f*, nta_leg_magic_t*, tag_type_t,
                                    tag_value_t, ...);
    static const auto sofia = reinterpret_cast<Function>(dlsym(RTLD_NEXT, "nta_leg_tcreate"));
    if (sofia == nullptr) return nullptr;
    const bool had_default = agent != nullptr && nta_default_leg(agent) != nullptr;
    ta_list ta;
    ta_start(ta, tag, value);
    nta_leg_t* leg = sofia(agent, callback, magic, ta_tags(ta));
    ta_end(ta);
    if (leg == nullptr || had_default || nta_default_leg(agent) != leg || callback == nullptr)
        return leg;
    using xsgw::sip::detail::entries;
    try {
        auto entry = std::make_unique<xsgw::sip::detail::Entry>();
        entry->leg.agent = agent;
        entry->nua_callback = callback;
        entry->nua_magic = magic;
        nta_leg_bind(leg, &xsgw::sip::detail::offer,
                     reinterpret_cast<nta_leg_magic_t*>(entry.get()));
        entries.push_back(std::move(entry));
    } catch (...) { // out of memory: nua keeps its leg as it made it
        nta_leg_bind(leg, callback, magic);
    }
    return leg;
}

extern "C" __attribute__((visibility("default"), noinline)) nta_outgoing_t*
nta_outgoing_mcreate(nta_agent_t* agent, nta_response_f* callback, nta_outgoing_magic_t* magic,
                     const url_string_t* route_url, msg_t* msg, tag_type_t tag, tag_value_t value,
                     ...) {
    using Function = nta_outgoing_t* (*)(nta_agent_t*, nta_response_f*, nta_outgoing_magic_t*,
                                         const url_string_t*, msg_t*, tag_type_t, tag_value_t, ...);
    static const auto sofia = reinterpret_cast<Function>(dlsym(RTLD_NEXT, "nta_outgoing_mcreate"));
    if (sofia == nullptr) return nullptr;
    // NONE (a msg_t* of -1) is valid here too: no message given.
    if (msg != nullptr && msg != reinterpret_cast<msg_t*>(static_cast<std::intptr_t>(-1))) {
        for (const auto& entry : xsgw::sip::detail::entries)
            if (entry->leg.agent == agent && entry->leg.outgoing) entry->leg.outgoing(msg);
    }
    ta_list ta;
    ta_start(ta, tag, value);
    nta_outgoing_t* orq = sofia(agent, callback, magic, route_url, msg, ta_tags(ta));
    ta_end(ta);
    return orq;
}

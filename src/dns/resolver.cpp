#include "xsgw/dns/resolver.hpp"

#include "xsgw/core/config.hpp"
#include "xsgw/core/event_loop.hpp"
#include "xsgw/dns/cache.hpp"

#include <algorithm>
#include <ares.h>
#include <arpa/inet.h>
#include <deque>
#include <exception>
#include <fmt/format.h>
#include <map>
#include <random>
#include <sofia-sip/su_wait.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/time.h>
#include <utility>

namespace xsgw::dns {

namespace {

using Clock = std::chrono::steady_clock;

// DNS wire constants (RFC 1035, 3596, 2782, 3403).
constexpr int class_in = 1;
constexpr int type_a = 1;
constexpr int type_aaaa = 28;
constexpr int type_srv = 33;
constexpr int type_naptr = 35;

// More addresses than this for one name are not worth trying.
constexpr int max_addresses = 64;

int type_code(RecordType type) {
    switch (type) {
    case RecordType::naptr:
        return type_naptr;
    case RecordType::srv:
        return type_srv;
    case RecordType::a:
        return type_a;
    case RecordType::aaaa:
        return type_aaaa;
    }
    return type_a;
}

// c-ares' parsers drop TTLs for NAPTR and SRV, so read them off the answer section:
// the smallest TTL of every answer record (CNAMEs included), nullopt if malformed or empty.
std::optional<uint32_t> min_answer_ttl(const unsigned char* buf, int len) {
    if (buf == nullptr || len < 12) return std::nullopt;
    const auto size = static_cast<std::size_t>(len);
    const auto u16 = [buf](std::size_t at) {
        return static_cast<uint16_t>(buf[at] << 8 | buf[at + 1]);
    };
    const auto skip_name = [&](std::size_t& pos) {
        while (pos < size) {
            const unsigned label = buf[pos];
            if ((label & 0xC0) == 0xC0) {
                pos += 2;
                return pos <= size;
            }
            if ((label & 0xC0) != 0) return false;
            pos += 1 + label;
            if (label == 0) return true;
        }
        return false;
    };
    std::size_t pos = 12;
    for (unsigned i = 0, n = u16(4); i < n; ++i) {
        if (!skip_name(pos)) return std::nullopt;
        pos += 4;
    }
    std::optional<uint32_t> least;
    for (unsigned i = 0, n = u16(6); i < n; ++i) {
        if (!skip_name(pos) || pos + 10 > size) return std::nullopt;
        uint32_t ttl = static_cast<uint32_t>(u16(pos + 4)) << 16 | u16(pos + 6);
        // RFC 2181 §8: a TTL with the top bit set counts as zero.
        if (ttl > 0x7FFFFFFFu) ttl = 0;
        pos += 10 + u16(pos + 8);
        if (pos > size) return std::nullopt;
        least = least ? std::min(*least, ttl) : ttl;
    }
    return least;
}

std::string text(const unsigned char* s) {
    return s == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(s));
}

// Fills `answer` from a successful reply; returns a c-ares status.
int parse_records(RecordType type, const unsigned char* abuf, int alen, Answer& answer) {
    switch (type) {
    case RecordType::naptr: {
        ares_naptr_reply* list = nullptr;
        const int status = ares_parse_naptr_reply(abuf, alen, &list);
        if (status != ARES_SUCCESS) return status;
        for (auto* r = list; r != nullptr; r = r->next)
            answer.naptr.push_back(NaptrRecord{r->order, r->preference, text(r->flags),
                                               text(r->service), text(r->regexp),
                                               r->replacement ? r->replacement : ""});
        ares_free_data(list);
        return ARES_SUCCESS;
    }
    case RecordType::srv: {
        ares_srv_reply* list = nullptr;
        const int status = ares_parse_srv_reply(abuf, alen, &list);
        if (status != ARES_SUCCESS) return status;
        for (auto* r = list; r != nullptr; r = r->next)
            answer.srv.push_back(
                SrvRecord{r->priority, r->weight, r->port, normalize_host(r->host ? r->host : "")});
        ares_free_data(list);
        return ARES_SUCCESS;
    }
    case RecordType::a: {
        ares_addrttl found[max_addresses];
        int count = max_addresses;
        const int status = ares_parse_a_reply(abuf, alen, nullptr, found, &count);
        if (status != ARES_SUCCESS) return status;
        for (int i = 0; i < count; ++i) {
            char buf[INET_ADDRSTRLEN] = {};
            if (inet_ntop(AF_INET, &found[i].ipaddr, buf, sizeof buf) != nullptr)
                answer.addresses.emplace_back(buf);
        }
        return ARES_SUCCESS;
    }
    case RecordType::aaaa: {
        ares_addr6ttl found[max_addresses];
        int count = max_addresses;
        const int status = ares_parse_aaaa_reply(abuf, alen, nullptr, found, &count);
        if (status != ARES_SUCCESS) return status;
        for (int i = 0; i < count; ++i) {
            char buf[INET6_ADDRSTRLEN] = {};
            if (inet_ntop(AF_INET6, &found[i].ip6addr, buf, sizeof buf) != nullptr)
                answer.addresses.emplace_back(buf);
        }
        return ARES_SUCCESS;
    }
    }
    return ARES_EBADQUERY;
}

Answer to_answer(RecordType type, int status, const unsigned char* abuf, int alen) {
    Answer answer;
    if (status == ARES_SUCCESS) status = parse_records(type, abuf, alen, answer);
    switch (status) {
    case ARES_SUCCESS: {
        const bool empty = answer.naptr.empty() && answer.srv.empty() && answer.addresses.empty();
        answer.status = empty ? AnswerStatus::no_data : AnswerStatus::ok;
        answer.ttl = min_answer_ttl(abuf, alen).value_or(0);
        break;
    }
    case ARES_ENODATA:
        answer.status = AnswerStatus::no_data;
        break;
    case ARES_ENOTFOUND:
        answer.status = AnswerStatus::no_domain;
        break;
    default:
        answer.status = AnswerStatus::error;
        answer.error = ares_strerror(status);
        break;
    }
    return answer;
}

std::string_view to_string(AnswerStatus status) {
    switch (status) {
    case AnswerStatus::ok:
        return "ok";
    case AnswerStatus::no_data:
        return "no data";
    case AnswerStatus::no_domain:
        return "NXDOMAIN";
    case AnswerStatus::error:
        return "error";
    }
    return "?";
}

// ares_library_init/cleanup are reference counted: one pair per Resolver.
struct AresLibrary {
    AresLibrary() {
        if (const int status = ares_library_init(ARES_LIB_INIT_ALL); status != ARES_SUCCESS)
            throw std::runtime_error(fmt::format("c-ares: {}", ares_strerror(status)));
    }
    ~AresLibrary() { ares_library_cleanup(); }
    AresLibrary(const AresLibrary&) = delete;
    AresLibrary& operator=(const AresLibrary&) = delete;
    AresLibrary(AresLibrary&&) = delete;
    AresLibrary& operator=(AresLibrary&&) = delete;
};

struct ChannelDeleter {
    void operator()(ares_channel channel) const { ares_destroy(channel); }
};
using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelDeleter>;

} // namespace

struct Resolver::Impl {
    Impl(core::EventLoop& loop, const core::DnsConfig& config, Options options);
    ~Impl();
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    Impl(Impl&&) = delete;
    Impl& operator=(Impl&&) = delete;

    // A question handed to c-ares and the resolutions waiting for its answer.
    struct InFlight {
        Impl* self = nullptr;
        Query query;
        std::vector<uint64_t> waiters;
    };

    // One resolve_sip call: its answers so far and how many it still waits for.
    struct Procedure {
        SipDestination destination;
        Answers answers;
        std::size_t outstanding = 0;
        Callback callback;
    };

    static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable);
    static void on_query_done(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

    void socket_state(ares_socket_t fd, bool readable, bool writable);
    void socket_ready(ares_socket_t fd, int revents);
    void timeout_due();
    void rearm_timeout();
    void query_done(InFlight& flight, int status, const unsigned char* abuf, int alen);
    void start(SipDestination destination, Callback callback);
    void pump();
    void advance(uint64_t id);
    void send(const Query& query);
    void finish(Callback callback, Resolution resolution);
    void deliver();
    Clock::time_point now() const { return options.clock ? options.clock() : Clock::now(); }

    AresLibrary library;
    core::EventLoop& loop;
    Options options;
    AnswerCache cache;
    std::mt19937 rng;
    core::Timer ares_timer;
    core::Timer deliver_timer;
    std::map<ares_socket_t, std::unique_ptr<core::FdWatch>> watches;
    // Watches of sockets c-ares closed, possibly from inside their own callback: they are
    // destroyed on the next loop event, never inside that callback.
    std::vector<std::unique_ptr<core::FdWatch>> retired;
    std::map<Query, std::unique_ptr<InFlight>> in_flight;
    std::map<uint64_t, Procedure> procedures;
    uint64_t next_id = 1;
    std::deque<uint64_t> runnable;
    bool pumping = false;
    std::vector<std::pair<Callback, Resolution>> finished;
    Stats stats;
    // Expires with the Impl: deliver() stops calling back once a callback destroyed us.
    std::shared_ptr<int> alive = std::make_shared<int>(0);
    bool destroying = false;
    Channel channel;
};

Resolver::Impl::Impl(core::EventLoop& event_loop, const core::DnsConfig& config, Options opts)
    : loop(event_loop), options(std::move(opts)),
      cache(AnswerCache::Limits{options.max_ttl, options.negative_ttl, options.max_entries}),
      ares_timer(event_loop), deliver_timer(event_loop) {
    if (!options.random) {
        rng.seed(std::random_device{}());
        options.random = [this](uint32_t max) {
            return std::uniform_int_distribution<uint32_t>(0, max)(rng);
        };
    }
    ares_options ao{};
    ao.sock_state_cb = &Impl::on_socket_state;
    ao.sock_state_cb_data = this;
    ao.timeout = static_cast<int>(std::max<long>(options.query_timeout.count(), 1));
    ao.tries = std::max(options.tries, 1);
    ares_channel raw = nullptr;
    const int status =
        ares_init_options(&raw, &ao, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status != ARES_SUCCESS)
        throw std::runtime_error(fmt::format("c-ares: {}", ares_strerror(status)));
    channel.reset(raw);
    if (!config.servers.empty()) {
        const std::string csv = fmt::format("{}", fmt::join(config.servers, ","));
        if (const int s = ares_set_servers_ports_csv(channel.get(), csv.c_str()); s != ARES_SUCCESS)
            throw std::runtime_error(fmt::format("dns.servers \"{}\": {}", csv, ares_strerror(s)));
    }
}

Resolver::Impl::~Impl() {
    // ares_destroy ends every query with ARES_EDESTRUCTION and closes every socket;
    // query_done ignores the former, socket_state retires the watches.
    destroying = true;
    channel.reset();
}

void Resolver::Impl::on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->socket_state(fd, readable != 0, writable != 0);
}

void Resolver::Impl::on_query_done(void* arg, int status, int /*timeouts*/, unsigned char* abuf,
                                   int alen) {
    auto* flight = static_cast<InFlight*>(arg);
    flight->self->query_done(*flight, status, abuf, alen);
}

void Resolver::Impl::socket_state(ares_socket_t fd, bool readable, bool writable) {
    if (!readable && !writable) {
        const auto it = watches.find(fd);
        if (it == watches.end()) return;
        it->second->detach();
        retired.push_back(std::move(it->second));
        watches.erase(it);
        return;
    }
    const int events = (readable ? SU_WAIT_IN : 0) | (writable ? SU_WAIT_OUT : 0);
    auto& watch = watches[fd];
    try {
        if (watch) {
            watch->set_events(events);
            return;
        }
        watch = std::make_unique<core::FdWatch>(loop);
        watch->attach(fd, events, [this, fd](int revents) { socket_ready(fd, revents); });
    } catch (const std::exception& e) {
        // Unwatched, the query still ends through c-ares' own timeout.
        spdlog::error("dns: cannot watch socket {}: {}", fd, e.what());
        watches.erase(fd);
    }
}

void Resolver::Impl::socket_ready(ares_socket_t fd, int revents) {
    retired.clear();
    const bool readable = (revents & (SU_WAIT_IN | SU_WAIT_ERR | SU_WAIT_HUP)) != 0;
    const bool writable = (revents & SU_WAIT_OUT) != 0;
    ares_process_fd(channel.get(), readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
    rearm_timeout();
}

void Resolver::Impl::timeout_due() {
    retired.clear();
    ares_process_fd(channel.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timeout();
}

void Resolver::Impl::rearm_timeout() {
    if (destroying) return;
    timeval tv{};
    if (ares_timeout(channel.get(), nullptr, &tv) == nullptr) {
        ares_timer.cancel();
        return;
    }
    // Rounded up: waking before c-ares' deadline would only spin.
    const auto ms = std::chrono::milliseconds(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
    ares_timer.start(ms, [this] { timeout_due(); });
}

void Resolver::Impl::query_done(InFlight& flight, int status, const unsigned char* abuf, int alen) {
    // During ares_destroy (ARES_EDESTRUCTION) the Impl is going away: nobody is called back.
    if (destroying) return;
    auto node = in_flight.extract(flight.query);
    const Query query = node.key();
    const std::vector<uint64_t> waiters = std::move(node.mapped()->waiters);
    const Answer answer = to_answer(query.type, status, abuf, alen);
    spdlog::debug("dns: {} {}: {}{}{} ttl {}", to_string(query.type), query.name,
                  to_string(answer.status), answer.error.empty() ? "" : ", ", answer.error,
                  answer.ttl);
    cache.store(query, answer, now());
    for (const uint64_t id : waiters) {
        const auto it = procedures.find(id);
        if (it == procedures.end()) continue;
        it->second.answers.emplace(query, answer);
        if (--it->second.outstanding == 0) runnable.push_back(id);
    }
    pump();
}

void Resolver::Impl::start(SipDestination destination, Callback callback) {
    if (!options.tls) destination.tls_usable = false;
    ++stats.resolutions;
    const uint64_t id = next_id++;
    procedures.emplace(id, Procedure{std::move(destination), {}, 0, std::move(callback)});
    runnable.push_back(id);
    pump();
}

void Resolver::Impl::pump() {
    // Answers can arrive synchronously from inside ares_query (advance → send); they only
    // queue their procedure here, the outermost pump runs it.
    if (pumping) return;
    pumping = true;
    while (!runnable.empty()) {
        const uint64_t id = runnable.front();
        runnable.pop_front();
        advance(id);
    }
    pumping = false;
}

void Resolver::Impl::advance(uint64_t id) {
    const auto it = procedures.find(id);
    if (it == procedures.end()) return;
    Procedure& p = it->second;
    Step step = next_step(p.destination, p.answers, options.random);
    if (!step.result && step.needed.empty()) {
        Resolution stuck;
        stuck.failure = Failure::unreachable;
        stuck.reason = "internal error: the procedure made no progress";
        step.result = std::move(stuck);
    }
    if (step.result) {
        finish(std::move(p.callback), std::move(*step.result));
        procedures.erase(it);
        return;
    }
    std::vector<Query> to_send;
    p.outstanding = step.needed.size();
    const auto t = now();
    for (auto& q : step.needed) {
        if (auto cached = cache.find(q, t)) {
            ++stats.cache_hits;
            p.answers.emplace(q, std::move(*cached));
            --p.outstanding;
            continue;
        }
        ++stats.cache_misses;
        auto [flight, fresh] = in_flight.try_emplace(q);
        if (fresh) {
            flight->second = std::make_unique<InFlight>(InFlight{this, q, {}});
            to_send.push_back(q);
        } else {
            ++stats.joined_in_flight;
        }
        flight->second->waiters.push_back(id);
    }
    if (p.outstanding == 0) runnable.push_back(id);
    for (const auto& q : to_send)
        send(q);
}

void Resolver::Impl::send(const Query& query) {
    const auto it = in_flight.find(query);
    if (it == in_flight.end()) return;
    ++stats.queries_sent;
    spdlog::debug("dns: query {} {}", to_string(query.type), query.name);
    // May call on_query_done before returning (e.g. no usable server): `it` is dead after this.
    ares_query(channel.get(), query.name.c_str(), class_in, type_code(query.type),
               &Impl::on_query_done, it->second.get());
    rearm_timeout();
}

void Resolver::Impl::finish(Callback callback, Resolution resolution) {
    spdlog::debug("dns: resolved: {} target(s), {}: {}", resolution.targets.size(),
                  to_string(resolution.failure), resolution.reason);
    finished.emplace_back(std::move(callback), std::move(resolution));
    if (!deliver_timer.armed())
        deliver_timer.start(std::chrono::milliseconds(0), [this] { deliver(); });
}

void Resolver::Impl::deliver() {
    retired.clear();
    auto batch = std::move(finished);
    finished.clear();
    const std::weak_ptr<int> token = alive;
    for (auto& [callback, resolution] : batch) {
        if (token.expired()) return;
        if (!callback) continue;
        try {
            callback(resolution);
        } catch (const std::exception& e) {
            // Never let an exception unwind through Sofia's C loop.
            spdlog::error("dns: resolution callback threw: {}", e.what());
        }
    }
}

Resolver::Resolver(core::EventLoop& loop, const core::DnsConfig& config, Options options)
    : impl_(std::make_unique<Impl>(loop, config, std::move(options))) {}

Resolver::~Resolver() = default;

void Resolver::resolve_sip(const SipDestination& destination, Callback callback) {
    impl_->start(destination, std::move(callback));
}

const Resolver::Stats& Resolver::stats() const {
    return impl_->stats;
}

std::vector<std::string> Resolver::servers() const {
    std::vector<std::string> out;
    ares_addr_port_node* list = nullptr;
    if (ares_get_servers_ports(impl_->channel.get(), &list) != ARES_SUCCESS) return out;
    for (auto* node = list; node != nullptr; node = node->next) {
        char buf[INET6_ADDRSTRLEN] = {};
        if (inet_ntop(node->family, &node->addr, buf, sizeof buf) == nullptr) continue;
        const int port = node->udp_port != 0 ? node->udp_port : 53;
        out.push_back(node->family == AF_INET6 ? fmt::format("[{}]:{}", buf, port)
                                               : fmt::format("{}:{}", buf, port));
    }
    ares_free_data(list);
    return out;
}

std::optional<std::chrono::seconds> Resolver::cached_ttl(const Query& query) const {
    return impl_->cache.remaining_ttl(Query{normalize_host(query.name), query.type}, impl_->now());
}

} // namespace xsgw::dns

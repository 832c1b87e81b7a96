#include "xsgw/core/event_loop.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <stdexcept>
#include <sys/signalfd.h>
#include <unistd.h>
#include <utility>

namespace xsgw::core {

EventLoop::EventLoop() {
    if (su_init() != 0) throw std::runtime_error("su_init failed");
    root_ = su_root_create(nullptr);
    if (root_ == nullptr) {
        su_deinit();
        throw std::runtime_error("su_root_create failed");
    }
    // One thread: nua and everything else run their callbacks in this one.
    su_root_threading(root_, 0);
}

EventLoop::~EventLoop() {
    su_root_destroy(root_);
    su_deinit();
}

void EventLoop::run() {
    su_root_run(root_);
}

void EventLoop::stop() {
    su_root_break(root_);
}

bool EventLoop::run_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
    using Clock = std::chrono::steady_clock;
    const auto end = Clock::now() + deadline;
    su_duration_t wait = 0;
    while (!pred()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
        if (left.count() <= 0) return pred();
        // su_root_step returns the time to the next timer: wait no longer than that,
        // so a timer armed for now fires now, not at the end of a fixed slice.
        const su_duration_t next = su_root_step(
            root_, std::min<su_duration_t>(wait, static_cast<su_duration_t>(left.count())));
        wait = next < 0 ? 50 : std::min<su_duration_t>(next, 50);
    }
    return true;
}

Timer::Timer(EventLoop& loop) : timer_(su_timer_create(su_root_task(loop.root()), 0)) {
    if (timer_ == nullptr) throw std::runtime_error("su_timer_create failed");
}

Timer::~Timer() {
    su_timer_destroy(timer_);
}

void Timer::start(std::chrono::milliseconds after, std::function<void()> callback) {
    callback_ = std::move(callback);
    su_timer_set_interval(timer_, &Timer::trampoline, this,
                          static_cast<su_duration_t>(std::max<long>(after.count(), 0)));
}

void Timer::cancel() {
    su_timer_reset(timer_);
}

bool Timer::armed() const {
    return su_timer_is_set(timer_) != 0;
}

void Timer::trampoline(void* /*magic*/, su_timer_s* /*timer*/, void* arg) {
    static_cast<Timer*>(arg)->fire();
}

void Timer::fire() {
    // Moved out so the callback may re-arm this timer with a new one.
    auto callback = std::move(callback_);
    callback_ = nullptr;
    if (callback) callback();
}

FdWatch::FdWatch(EventLoop& loop) : loop_(loop) {}

FdWatch::~FdWatch() {
    detach();
}

void FdWatch::attach(int fd, int events, Callback callback) {
    detach();
    su_wait_t wait = SU_WAIT_INIT;
    if (su_wait_create(&wait, fd, events) != 0) throw std::runtime_error("su_wait_create failed");
    callback_ = std::move(callback);
    const int index = su_root_register(loop_.root(), &wait, &FdWatch::trampoline, this, 0);
    if (index <= 0) {
        su_wait_destroy(&wait);
        throw std::runtime_error("su_root_register failed");
    }
    fd_ = fd;
    index_ = index;
    events_ = events;
}

void FdWatch::set_events(int events) {
    if (index_ <= 0 || events == events_) return;
    su_root_eventmask(loop_.root(), index_, fd_, events);
    events_ = events;
}

void FdWatch::detach() {
    if (index_ > 0) su_root_deregister(loop_.root(), index_);
    index_ = 0;
    fd_ = -1;
    events_ = 0;
}

int FdWatch::trampoline(void* /*magic*/, pollfd* wait, void* arg) {
    auto* self = static_cast<FdWatch*>(arg);
    const int revents = su_wait_events(wait, self->fd_);
    if (self->callback_) self->callback_(revents);
    return 0;
}

SignalWatch::SignalWatch(EventLoop& loop, std::initializer_list<int> signals,
                         std::function<void(int)> callback)
    : watch_(loop), callback_(std::move(callback)) {
    sigemptyset(&mask_);
    for (int s : signals)
        sigaddset(&mask_, s);
    // Blocked so they queue on the signalfd instead of running a handler.
    if (sigprocmask(SIG_BLOCK, &mask_, nullptr) != 0)
        throw std::runtime_error("sigprocmask failed");
    fd_ = signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("signalfd failed");
    watch_.attach(fd_, SU_WAIT_IN, [this](int) { on_readable(); });
}

SignalWatch::~SignalWatch() {
    watch_.detach();
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_UNBLOCK, &mask_, nullptr);
}

void SignalWatch::on_readable() {
    signalfd_siginfo info{};
    while (read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
        callback_(static_cast<int>(info.ssi_signo));
}

} // namespace xsgw::core

// The one event loop of the process: Sofia-SIP's su_root, single-threaded.
#pragma once

#include <chrono>
#include <csignal>
#include <functional>
#include <initializer_list>
#include <memory>

struct su_root_s;
struct su_timer_s;
struct pollfd; // su_wait_t on Linux

namespace xsgw::core {

/// Owns su_root (su_init/su_deinit included) and runs it in the calling thread only.
class EventLoop {
public:
    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;
    EventLoop(EventLoop&&) = delete;
    EventLoop& operator=(EventLoop&&) = delete;

    /// The underlying su_root, for Sofia components (nua) that attach to it.
    su_root_s* root() const { return root_; }
    /// Runs until stop() is called from a callback.
    void run();
    /// Makes run() return after the current callback.
    void stop();
    /// Runs callbacks until pred() holds or the deadline passes; returns pred().
    /// For tests and for draining on shutdown: never a sleep.
    bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline);

private:
    su_root_s* root_ = nullptr;
};

/// A one-shot timer on the loop; cancelling or destroying it guarantees the callback won't run.
class Timer {
public:
    explicit Timer(EventLoop& loop);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    Timer(Timer&&) = delete;
    Timer& operator=(Timer&&) = delete;

    /// (Re)arms the timer; a previously armed callback is replaced.
    void start(std::chrono::milliseconds after, std::function<void()> callback);
    /// Disarms the timer; safe to call from its own callback.
    void cancel();
    /// True while a callback is pending.
    bool armed() const;

private:
    static void trampoline(void* magic, su_timer_s* timer, void* arg);
    void fire();

    su_timer_s* timer_ = nullptr;
    std::function<void()> callback_;
};

/// Watches one file descriptor for readiness. The fd is not owned.
/// Do not destroy a FdWatch from inside its own callback: call detach() instead.
class FdWatch {
public:
    /// Events are SU_WAIT_IN / SU_WAIT_OUT bits; the callback gets the ready events.
    using Callback = std::function<void(int revents)>;

    explicit FdWatch(EventLoop& loop);
    ~FdWatch();
    FdWatch(const FdWatch&) = delete;
    FdWatch& operator=(const FdWatch&) = delete;
    FdWatch(FdWatch&&) = delete;
    FdWatch& operator=(FdWatch&&) = delete;

    /// Starts watching fd for events; replaces any earlier registration.
    void attach(int fd, int events, Callback callback);
    /// Changes the event mask of the current registration.
    void set_events(int events);
    /// Stops watching; the callback will not run again. Safe inside the callback.
    void detach();
    bool attached() const { return index_ > 0; }
    int fd() const { return fd_; }

private:
    static int trampoline(void* magic, pollfd* wait, void* arg);

    EventLoop& loop_;
    int fd_ = -1;
    int index_ = 0;
    int events_ = 0;
    Callback callback_;
};

/// Delivers the given signals as loop events through a signalfd (no work in handlers).
class SignalWatch {
public:
    SignalWatch(EventLoop& loop, std::initializer_list<int> signals,
                std::function<void(int signo)> callback);
    ~SignalWatch();
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;
    SignalWatch(SignalWatch&&) = delete;
    SignalWatch& operator=(SignalWatch&&) = delete;

private:
    void on_readable();

    int fd_ = -1;
    sigset_t mask_{};
    FdWatch watch_;
    std::function<void(int)> callback_;
};

} // namespace xsgw::core

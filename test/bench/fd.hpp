// The one owner of a file descriptor.
#pragma once

#include <unistd.h>
#include <utility>

namespace xsgw::bench {

/// Owns one file descriptor and closes it exactly once; moves, never copies.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }

    /// The descriptor, or -1.
    int get() const { return fd_; }
    /// True while a descriptor is held.
    explicit operator bool() const { return fd_ >= 0; }
    /// Closes the descriptor, if any.
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

} // namespace xsgw::bench

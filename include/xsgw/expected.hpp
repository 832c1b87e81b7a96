// A value or an error: the project's stand-in for C++23 std::expected.
// Header-only vocabulary shared by the pure areas (address, translate); it
// depends on nothing but the standard library.
#pragma once

#include <cstdlib>
#include <utility>
#include <variant>

namespace xsgw {

/// Either a value or an error, like a minimal std::expected (C++23).
/// value() and error() must only be called for the alternative that is held;
/// calling the other one aborts rather than throw across the API.
template <class T, class E> class Expected {
public:
    /// A successful result.
    Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    /// A failed result.
    Expected(E error) : state_(std::in_place_index<1>, std::move(error)) {}

    /// True when a value is held.
    bool has_value() const noexcept { return state_.index() == 0; }
    /// True when a value is held.
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; aborts when an error is held.
    const T& value() const& { return *checked(std::get_if<0>(&state_)); }
    /// The value; aborts when an error is held.
    T& value() & { return *checked(std::get_if<0>(&state_)); }
    /// The value, moved out; aborts when an error is held.
    T&& value() && { return std::move(*checked(std::get_if<0>(&state_))); }
    /// The error; aborts when a value is held.
    const E& error() const { return *checked(std::get_if<1>(&state_)); }

    /// Member access to the value; aborts when an error is held.
    const T* operator->() const { return checked(std::get_if<0>(&state_)); }
    /// Member access to the value; aborts when an error is held.
    T* operator->() { return checked(std::get_if<0>(&state_)); }
    /// The value; aborts when an error is held.
    const T& operator*() const& { return value(); }
    /// The value; aborts when an error is held.
    T& operator*() & { return value(); }

private:
    template <class P> static P* checked(P* p) {
        // A wrong-alternative access is a bug in the caller; stop before it reads garbage.
        if (p == nullptr) std::abort();
        return p;
    }

    std::variant<T, E> state_;
};

} // namespace xsgw

// core/error.hpp — galvani's one exception type and the check macro that throws it.
//
// Every failure a user can cause (a wrong shape, a bad file, an id out of range)
// is a galvani::Error whose message names the op, file or tensor at fault, so a
// reader of the message knows where to look without a debugger.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace galvani {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;    // sizes, outermost first
using Strides = std::vector<int64_t>;  // in elements, not bytes

inline std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

namespace detail {
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace galvani

// GALVANI_CHECK(cond, parts...) throws galvani::Error with the parts streamed together.
#define GALVANI_CHECK(cond, ...)                                          \
  do {                                                                    \
    if (!(cond)) throw ::galvani::Error(::galvani::detail::cat(__VA_ARGS__)); \
  } while (0)

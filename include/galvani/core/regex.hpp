// core/regex.hpp — regular expressions that come from files: matched in linear time.
//
// peft's target_modules and bitsandbytes' llm_int8_skip_modules may be regexes, and they
// arrive inside adapter_config.json and config.json files from the internet. Python's `re` and
// std::regex both backtrack: a pattern such as "(.*.*)*x" takes exponential time on a module
// name, and std::regex recurses once per character of the pattern (a long pattern overflows the
// stack). galvani matches them with RE2 (Debian's libre2-dev), whose automata run in time
// linear in the text and bounded memory, and which refuses what it cannot do that way.
//
// Syntax: RE2's, which is Python's `re` without backreferences (\1) and lookaround ((?=…),
// (?!…), (?<=…)); named groups may be written (?P<name>…) as in Python. A pattern using what
// RE2 lacks is refused with an error naming the pattern, never matched differently. Whether a
// string matches is the same answer Python's re.fullmatch gives (the engines differ only in
// which submatch they report, which galvani does not use).
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include <re2/re2.h>

#include "error.hpp"

namespace galvani {

class Regex {
 public:
  // Compiles `pattern`. Throws galvani::Error naming `what` (e.g. "target_modules") and the
  // pattern when RE2 refuses it (a syntax error, a backreference, lookaround, or a pattern
  // whose automaton would need over 8 MiB).
  Regex(const std::string& pattern, const std::string& what) : pattern_(pattern) {
    RE2::Options opt;
    opt.set_log_errors(false);         // the error goes into the exception, not to stderr
    opt.set_max_mem(int64_t(8) << 20);
    re_ = std::make_shared<const RE2>(pattern, opt);
    GALVANI_CHECK(re_->ok(), what, ": '", pattern, "' is not a regular expression galvani can match (",
                  re_->error(), "; the syntax is RE2's: Python's re without backreferences or lookaround)");
  }

  // Python's re.fullmatch(pattern, text) is not None.
  bool full_match(std::string_view text) const { return RE2::FullMatch(text, *re_); }

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<const RE2> re_;  // RE2 is neither copyable nor movable; a compiled one is shared
};

}  // namespace galvani

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
// RE2 lacks is refused with an error naming the pattern. For the patterns module names are
// matched with (names, dots, digits, classes, alternation, repetition) full_match gives Python's
// re.fullmatch answer; the engines do differ elsewhere: RE2's \d \w \s \b are ASCII where
// Python's are Unicode (module names are ASCII), RE2 reads `a{,3}` literally (Python: 0 to 3),
// Python's `$` also matches before a final newline, and `[[:alpha:]]` is a POSIX class in RE2
// but a plain set in Python.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include <re2/re2.h>

#include "error.hpp"

namespace galvani {

// What Regex throws for a pattern RE2 refuses. `python_feature` is true when the pattern may be
// valid Python using what RE2 lacks (lookaround, a backreference or another escape RE2 does not
// know, such as \Z), false for a plain syntax error such as an unclosed group.
class RegexError : public Error {
 public:
  RegexError(const std::string& message, bool python_feature) : Error(message), python_feature(python_feature) {}
  bool python_feature;
};

class Regex {
 public:
  // Compiles `pattern`. Throws RegexError (a galvani::Error) naming `what` (e.g.
  // "target_modules") and the pattern when RE2 refuses it (a syntax error, a backreference,
  // lookaround, or a pattern whose automaton would need over 8 MiB).
  Regex(const std::string& pattern, const std::string& what) : pattern_(pattern) {
    RE2::Options opt;
    opt.set_log_errors(false);         // the error goes into the exception, not to stderr
    opt.set_max_mem(int64_t(8) << 20);
    re_ = std::make_shared<const RE2>(pattern, opt);
    if (!re_->ok())
      throw RegexError(detail::cat(what, ": '", pattern, "' is not a regular expression galvani can match (",
                                   re_->error(), "; the syntax is RE2's: Python's re without backreferences or lookaround)"),
                       re_->error_code() == RE2::ErrorBadPerlOp || re_->error_code() == RE2::ErrorBadEscape);
  }

  // Python's re.fullmatch(pattern, text) is not None.
  bool full_match(std::string_view text) const { return RE2::FullMatch(text, *re_); }

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<const RE2> re_;  // RE2 is neither copyable nor movable; a compiled one is shared
};

}  // namespace galvani

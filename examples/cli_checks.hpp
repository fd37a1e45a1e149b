// examples/cli_checks.hpp — the validators every program's numeric flags share: a bad value
// is rejected with a message that says what is wanted, instead of quietly replaced or let through.
// Apart from cli.hpp (which needs the library) so that the light programs can use them too.
#pragma once
#include <cmath>
#include <string>

#include <CLI/CLI.hpp>

namespace cli {

// A validator that parses the flag as a number and accepts it when `ok(value)` holds; otherwise
// CLI11 prints "<flag>: must be <wanted>, got <text>". `description` is what --help shows.
template <class Predicate>
CLI::Validator number_check(Predicate ok, const std::string& wanted, const std::string& description) {
  return CLI::Validator(
      [ok, wanted](std::string& s) -> std::string {
        try {
          if (ok(std::stod(s))) return {};
        } catch (...) {
        }
        return "must be " + wanted + ", got " + s;
      },
      description);
}

// A finite number > 0. CLI::PositiveNumber lets NaN through, and its message for 0 reads
// "Value 0 not in range 0.000000 to 1797693…" (DBL_MAX in full); these say what is wanted.
// (They serve integer flags too: CLI11 then converts, and refuses 2.5 for an integer.)
inline const CLI::Validator kPositive =
    number_check([](double v) { return std::isfinite(v) && v > 0; }, "a finite number > 0", "> 0");
// A fraction strictly between 0 and 1 (a test split that leaves neither part empty).
inline const CLI::Validator kFraction = number_check([](double v) { return v > 0 && v < 1; }, "a fraction in (0, 1)", "in (0, 1)");
inline const CLI::Validator kNonNegative =
    number_check([](double v) { return std::isfinite(v) && v >= 0; }, "a finite number >= 0", ">= 0");

}  // namespace cli

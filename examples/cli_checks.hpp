// examples/cli_checks.hpp — the validators every program's numeric flags share: a bad value
// is rejected with a message that says what is wanted, instead of quietly replaced or let through.
// Apart from cli.hpp (which needs the library) so that the light programs can use them too.
#pragma once
#include <cmath>
#include <string>

#include <CLI/CLI.hpp>

namespace cli {

// A finite number > 0. CLI::PositiveNumber lets NaN through, and its message for 0 reads
// "Value 0 not in range 0.000000 to 1797693…" (DBL_MAX in full); these say what is wanted.
// (They serve integer flags too: CLI11 then converts, and refuses 2.5 for an integer.)
inline const CLI::Validator kPositive{[](std::string& s) -> std::string {
                                        try {
                                          const double v = std::stod(s);
                                          if (std::isfinite(v) && v > 0) return {};
                                        } catch (...) {
                                        }
                                        return "must be a finite number > 0, got " + s;
                                      },
                                      "> 0"};
// A fraction strictly between 0 and 1 (a test split that leaves neither part empty).
inline const CLI::Validator kFraction{[](std::string& s) -> std::string {
                                        try {
                                          const double v = std::stod(s);
                                          if (v > 0 && v < 1) return {};
                                        } catch (...) {
                                        }
                                        return "must be a fraction in (0, 1), got " + s;
                                      },
                                      "in (0, 1)"};
inline const CLI::Validator kNonNegative{[](std::string& s) -> std::string {
                                           try {
                                             const double v = std::stod(s);
                                             if (std::isfinite(v) && v >= 0) return {};
                                           } catch (...) {
                                           }
                                           return "must be a finite number >= 0, got " + s;
                                         },
                                         ">= 0"};

}  // namespace cli

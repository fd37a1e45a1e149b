#!/usr/bin/env bash
# tests/expect_error.sh [--stdin TEXT] REGEX PROGRAM [ARGS...]
#
# The check behind the programs' bad-input CTests (docs/robustness.md): PROGRAM, given a bad
# input, must fail cleanly —
#   - exit with a status from 1 to 125: not 0, and not 126+ (a crash or an abort is killed by a
#     signal, which the shell reports as 128 + N);
#   - print, on stderr, a line that matches REGEX (grep -E), so the message names the culprit;
#   - show no sign of an uncaught exception or a signal ("terminate called", "Aborted", …).
# stdin is empty, or TEXT with --stdin. Prints what the program said, then the verdict.
set -u
stdin=""
if [ "${1-}" = "--stdin" ]; then
  stdin=$2
  shift 2
fi
[ $# -ge 2 ] || { echo "usage: $0 [--stdin TEXT] REGEX PROGRAM [ARGS...]" >&2; exit 2; }
regex=$1
shift
err=$(mktemp)
trap 'rm -f "$err"' EXIT
printf '%s' "$stdin" | "$@" >/dev/null 2>"$err"
rc=$?
echo "--- stderr of: $*"
cat "$err"
echo "--- exit status $rc"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "the program exited 0 on a bad input"
[ "$rc" -lt 126 ] || fail "exit status $rc: killed by a signal, or not run at all"
grep -Eq -e "$regex" "$err" || fail "no stderr line matches: $regex"
! grep -Eq -e "terminate called|Aborted|Segmentation fault|core dumped|std::bad_alloc" "$err" ||
  fail "stderr shows an uncaught exception or a signal"
echo "ok: a clean error"

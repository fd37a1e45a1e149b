#!/usr/bin/env python3
"""The docs as tests: run the shell commands of README.md and docs/*.md as a new user would,
in a scratch copy of a fresh clone, so a change that breaks a documented command fails CI.

Markers. An HTML comment on the line before a fenced block says what to do with it:

  <!-- doc-test: run -->             run the block with bash (set -e) in the scratch clone; it
                                     must exit 0. The blocks of one file run in order, in one
                                     clone, so a later block sees what an earlier one wrote.
                                     Only for commands that take seconds and stay offline.
  <!-- doc-test: output -->          the (untagged) block of output right after a run block:
                                     every non-empty line must appear in what the block printed
                                     (stdout + stderr); "…" inside a line matches anything.
  <!-- doc-test: help (why) -->      for commands that need the network, a GPU, real weights or
                                     minutes of training: each galvani program in the block
                                     (build/…, build-native/…, tools/*.sh) runs with --help
                                     appended, must exit 0 (CLI11 still rejects a bad value or a
                                     repeated option), and every --flag the doc passes must be
                                     in its help. Other lines (pip, python) are not run; every
                                     tools/… file they name must exist.
  <!-- doc-test: skip (why) -->      not run; the reason is required.

Every ```sh / ```bash / ```shell / ```console block must carry one of run, help or skip: a
new command cannot go unchecked by accident. (docs/benchmarks.md is skipped as a whole, see
FILE_DEFAULTS.)

The scratch clone: the tracked (and untracked, not ignored) files of the source tree are
copied to TMP/galvani; TMP/shared/data points at the shared data (as ../shared/data does
beside a real clone); build/ and build-native/ point at the build folder under test. A
benchmark a help block names (build/bench_x) runs from build/doc_help/bench_x when build/ has
no bench_x: an -O0 copy the test build makes for these checks (--list-benchmarks; the real one
is -O3, minutes to compile, and its --help is the same). Nothing is downloaded.

  python3 tools/doc_test.py --build build [--source .] [--data ../shared/data] [FILE.md …]
  python3 tools/doc_test.py --machine-paths [--source .]   # no absolute path of a dev machine
  python3 tools/doc_test.py --list-benchmarks [--source .] # help:bench_x / run:bench_x lines
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

SHELL_LANGS = {"sh", "bash", "shell", "console"}
MARKER = re.compile(r"<!--\s*doc-test:\s*(run|output|help|skip)\s*(?:\((.*?)\))?\s*-->")
FILE_DEFAULTS = {
    # Its commands are benchmarks: minutes each, with build folders of their own.
    "docs/benchmarks.md": ("skip", "benchmarks: minutes each, and their own build folders"),
}
# What a development machine's paths look like (split so this file does not match itself).
MACHINE_PATH = re.compile("(?<![\\w.])(/" + "work/|/" + "home/\\w|/" + "Users/|/" + "root/)")


class Block:
    def __init__(self, path, line, lang, text, mode, why):
        self.path, self.line, self.lang, self.text, self.mode, self.why = path, line, lang, text, mode, why

    def where(self):
        return f"{self.path}:{self.line}"


def parse_blocks(rel, text):
    """Fenced blocks with the marker (if any) on the line before the opening fence."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```\s*([\w+-]*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(2).lower(), i
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        mode = why = None
        k = start - 1
        while k >= 0 and lines[k].strip() == "":  # a marker may be followed by a blank line
            k -= 1
        if k >= 0:
            mk = MARKER.search(lines[k])
            if mk:
                mode, why = mk.group(1), mk.group(2)
        blocks.append(Block(rel, start + 1, lang, "\n".join(lines[start + 1:j]), mode, why))
        i = j + 1
    return blocks


def commands(text):
    """Shell lines with continuations joined and comments dropped."""
    out, cur = [], ""
    for raw in text.split("\n"):
        line = raw.rstrip()
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        try:
            toks = shlex.split(cur, comments=True)
        except ValueError:
            toks = cur.split()
        if toks:
            out.append(toks)
        cur = ""
    return out


def make_scratch(source, data, build):
    root = tempfile.mkdtemp(prefix="galvani_doc_test_")
    repo = os.path.join(root, "galvani")
    try:
        files = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               check=True, capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but build output
        files = []
        for d, dirs, names in os.walk(source):
            dirs[:] = [x for x in dirs if not x.startswith(("build", "runs", ".git", "weights"))]
            files += [os.path.relpath(os.path.join(d, n), source) for n in names]
    for f in files:
        if not f or not os.path.isfile(os.path.join(source, f)):
            continue
        dst = os.path.join(repo, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(source, f), dst)
    os.makedirs(os.path.join(root, "shared"), exist_ok=True)
    if data and os.path.isdir(data):
        os.symlink(os.path.abspath(data), os.path.join(root, "shared", "data"))
    for name in ("build", "build-native"):
        os.symlink(os.path.abspath(build), os.path.join(repo, name))
    return root, repo


def env_for(repo, build):
    env = dict(os.environ)
    env.pop("GALVANI_DATA", None)  # the clone finds ../shared/data, as a user's does
    env["GALVANI_BUILD_DIR"] = os.path.join(repo, "build")  # tools/frankenstein.sh: no install, no build
    env.setdefault("OMP_WAIT_POLICY", "passive")
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    return env


def line_matches(expected, got_lines):
    parts = [p.strip() for p in expected.split("…")]
    for g in got_lines:
        pos, ok = 0, True
        for p in parts:
            if not p:
                continue
            k = g.find(p, pos)
            if k < 0:
                ok = False
                break
            pos = k + len(p)
        if ok:
            return True
    return False


def run_block(b, repo, env, failures):
    t0 = time.time()
    p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b.text], cwd=repo, env=env, capture_output=True,
                       text=True, errors="replace", timeout=300)
    out = p.stdout + p.stderr
    print(f"  run   {b.where()}  rc {p.returncode}  {time.time() - t0:.1f} s")
    if p.returncode != 0:
        failures.append(f"{b.where()}: exit {p.returncode}\n--- block ---\n{b.text}\n--- output (tail) ---\n{out[-3000:]}")
    return out


def is_program(tok):
    return tok.startswith(("build/", "build-native/")) or (tok.startswith("tools/") and tok.endswith(".sh"))


def segments(toks):
    """A command line split at &&, ||, ; and cut at a pipe or redirection, without VAR=value prefixes."""
    segs, cur = [], []
    for t in toks + [";"]:
        if t in ("&&", "||", ";"):
            end = [i for i, x in enumerate(cur) if x == "|" or x.startswith((">", "<", "2>"))]
            cur = cur[:end[0]] if end else cur
            while cur and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", cur[0]):
                cur = cur[1:]
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(t)
    return segs


def doc_help_program(repo, exe):
    """build/bench_x in a help block, where build/ has no bench_x but the -O0 copy the test build
    makes for these checks (build/doc_help/bench_x, CMakeLists.txt "doc_benchmarks") exists."""
    name = os.path.basename(exe)
    if (exe.startswith(("build/", "build-native/")) and name.startswith("bench_")
            and not os.path.exists(os.path.join(repo, exe))):
        copy = os.path.join("build", "doc_help", name)
        if os.path.exists(os.path.join(repo, copy)):
            return copy
    return exe


def help_block(b, repo, env, failures):
    for toks in commands(b.text):
        for t in toks:  # every repository file a line names must exist
            if re.match(r"^tools/[\w./-]+$", t) and not os.path.exists(os.path.join(repo, t)):
                failures.append(f"{b.where()}: names {t}, which does not exist")
        for cmd in segments(toks):
            if not is_program(cmd[0]):
                continue
            # A galvani program (and tools/frankenstein.sh, which passes its arguments on) gets the
            # doc's arguments and --help; another script gets --help alone (bootstrap.sh's first
            # argument is a build folder, not an option).
            passes_on = cmd[0].startswith(("build/", "build-native/")) or cmd[0] == "tools/frankenstein.sh"
            argv = (cmd if passes_on else cmd[:1]) + ["--help"]
            argv[0] = doc_help_program(repo, argv[0])
            try:
                p = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, errors="replace",
                                   timeout=60)
            except OSError as e:
                failures.append(f"{b.where()}: cannot run {cmd[0]} ({e.strerror}); is it built?")
                continue
            text = p.stdout + p.stderr
            bad = [f for f in cmd[1:] if f.startswith("--") and f.split("=")[0] not in text]
            print(f"  help  {b.where()}  {cmd[0]}  rc {p.returncode}")
            if p.returncode != 0:
                failures.append(f"{b.where()}: `{' '.join(argv)}` exits {p.returncode}:\n{text[-1500:]}")
            elif bad:
                failures.append(f"{b.where()}: `{cmd[0]}` has no option {', '.join(bad)} (not in its --help)")


def check_file(rel, source, build, data, failures):
    with open(os.path.join(source, rel), encoding="utf-8") as f:
        blocks = parse_blocks(rel, f.read())
    default = FILE_DEFAULTS.get(rel)
    for b in blocks:
        if b.mode is None and b.lang in SHELL_LANGS:
            if default:
                b.mode, b.why = default
            else:
                failures.append(f"{b.where()}: a ```{b.lang} block without a doc-test marker "
                                "(<!-- doc-test: run | help (why) | skip (why) --> on the line before)")
        if b.mode in ("help", "skip") and not (b.why or "").strip():
            failures.append(f"{b.where()}: doc-test: {b.mode} needs a reason in parentheses")
    todo = [b for b in blocks if b.mode in ("run", "help")]
    if not todo:
        return
    print(f"{rel}: {sum(b.mode == 'run' for b in blocks)} run, {sum(b.mode == 'help' for b in blocks)} help, "
          f"{sum(b.mode == 'skip' for b in blocks)} skip")
    root, repo = make_scratch(source, data, build)
    try:
        env = env_for(repo, build)
        last_out = None
        for b in blocks:
            if b.mode == "run":
                last_out = run_block(b, repo, env, failures)
            elif b.mode == "help":
                help_block(b, repo, env, failures)
                last_out = None
            elif b.mode == "output":
                if last_out is None:
                    failures.append(f"{b.where()}: doc-test: output must follow a run block")
                    continue
                got = [l.strip() for l in last_out.split("\n")]
                missing = [e.strip() for e in b.text.split("\n") if e.strip() and not line_matches(e.strip(), got)]
                if missing:
                    failures.append(f"{b.where()}: {len(missing)} line(s) of the shown output are not in what the "
                                    "block printed, first:\n    " + "\n    ".join(missing[:3]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def doc_files(source):
    """README.md and docs/*.md, relative to SOURCE: the files checked when none are named."""
    return ["README.md"] + sorted("docs/" + f for f in os.listdir(os.path.join(source, "docs")) if f.endswith(".md"))


def benchmarks_named(source):
    """The benchmarks (build/bench_x, build-native/bench_x) that run and help blocks of README.md
    and docs/*.md name, as "help:bench_x" or "run:bench_x" lines: CMake builds an -O0 copy of
    each help one for these checks and the real one for each run one (--list-benchmarks)."""
    out = set()
    for rel in doc_files(source):
        if FILE_DEFAULTS.get(rel, ("",))[0] == "skip":
            continue
        with open(os.path.join(source, rel), encoding="utf-8") as f:
            blocks = parse_blocks(rel, f.read())
        for b in blocks:
            if b.mode not in ("run", "help"):
                continue
            for toks in commands(b.text):
                for cmd in segments(toks):
                    m = re.match(r"^build(?:-native)?/(bench_\w+)$", cmd[0])
                    if m:
                        out.add(f"{b.mode}:{m.group(1)}")
    return sorted(out)


def machine_paths(source, failures):
    try:
        files = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               check=True, capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = [os.path.relpath(os.path.join(d, n), source) for d, _, ns in os.walk(source) for n in ns
                 if "/build" not in d and "/.git" not in d]
    for f in files:
        p = os.path.join(source, f)
        if not f or not os.path.isfile(p) or os.path.getsize(p) > 2_000_000:
            continue
        try:
            with open(p, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if MACHINE_PATH.search(line):
                        failures.append(f"{f}:{n}: an absolute path of a development machine: {line.strip()[:120]}")
        except UnicodeDecodeError:
            continue


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--build", help="build folder with the programs (build/ in the docs)")
    ap.add_argument("--data", help="the shared data (default: SOURCE/../shared/data)")
    ap.add_argument("--machine-paths", action="store_true", help="only check for absolute paths of a dev machine")
    ap.add_argument("--list-benchmarks", action="store_true",
                    help="print the benchmarks the docs' run and help blocks name (for CMake) and exit")
    ap.add_argument("files", nargs="*", help="Markdown files relative to SOURCE (default: README.md docs/*.md)")
    a = ap.parse_args()
    source = os.path.abspath(a.source)
    failures = []
    if a.list_benchmarks:
        print("\n".join(benchmarks_named(source)))
        return
    if a.machine_paths:
        machine_paths(source, failures)
    else:
        if not a.build:
            ap.error("--build is required")
        data = a.data or os.environ.get("GALVANI_DATA") or os.path.join(source, "..", "shared", "data")
        files = a.files or doc_files(source)
        for rel in files:
            check_file(rel, source, os.path.abspath(a.build), data, failures)
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

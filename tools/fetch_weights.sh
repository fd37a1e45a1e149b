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
# Exit status: 0 all files present and consistent, 1 a download or check failed, 2 usage.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
manifest="$here/weights/MANIFEST.md"
dest_root="$here/weights"
dry_run=0
name=""

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
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

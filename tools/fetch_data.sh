#!/usr/bin/env bash
# Download the course data into data/ for machines without ../shared/data:
#   data/frankenstein/pg84.txt                 Project Gutenberg eBook #84
#   data/tokenizers/gpt2/{tokenizer.json,…}     openai-community/gpt2 (Hugging Face hub)
#   data/tokenizers/mistral/{tokenizer.json,…}  mistralai/Mistral-7B-v0.1 (gated: set HF_TOKEN)
# galvani looks in $GALVANI_DATA, then ../shared/data, then data/ (include/galvani/core/paths.hpp).
#
#   tools/fetch_data.sh [--dry-run]
# Files already present are kept. The sha256 values are those of ../shared/data/MANIFEST.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  "") ;;
  *) echo "fetch_data.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac
hub=${HF_ENDPOINT:-https://huggingface.co}
gpt2_rev=607a30d783dfa663caf39e06633721c8d4cfcd7e
mistral_rev=27d67f1b5f57dc0953326b2601d68371d40ea8da

# path  url  sha256 ("-" when the manifest has none)
files=(
  "frankenstein/pg84.txt https://www.gutenberg.org/cache/epub/84/pg84.txt -"
  "tokenizers/gpt2/tokenizer.json $hub/openai-community/gpt2/resolve/$gpt2_rev/tokenizer.json 8414cab924d8b9b33013f0d221c5862f365ee9be39c5c2bfae8a5a9e970478a6"
  "tokenizers/gpt2/tokenizer_config.json $hub/openai-community/gpt2/resolve/$gpt2_rev/tokenizer_config.json 5e04eb606e3a1583530a42e36c2a6b6615c86f34fe77e44d9ddeb43ff940931f"
  "tokenizers/gpt2/config-gpt2.json $hub/openai-community/gpt2/resolve/$gpt2_rev/config.json 0daed7749b4f02b8f76240d5444551d7b08712dab4d0adb8239c56ba823bb7b4"
  "tokenizers/mistral/tokenizer.json $hub/mistralai/Mistral-7B-v0.1/resolve/$mistral_rev/tokenizer.json 11c08db21487c885d8c792180f0be237f6a261b89a46f128a6a80a3aa4bd1720"
  "tokenizers/mistral/tokenizer_config.json $hub/mistralai/Mistral-7B-v0.1/resolve/$mistral_rev/tokenizer_config.json ddb008229511e51607002ffe28925001c4a9ca4177dc4de3a655d085cc610b99"
  "tokenizers/mistral/config.json $hub/mistralai/Mistral-7B-v0.1/resolve/$mistral_rev/config.json cf25cdf4719f181d1d1d371973285d9afe9afde0d0c6a6fd48de857555ce1e0d"
)
auth=()
[ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
for entry in "${files[@]}"; do
  read -r path url sha <<<"$entry"
  out="data/$path"
  if [ -s "$out" ]; then echo "have   $out"; continue; fi
  echo "fetch  $out  <-  $url"
  [ "$dry" = 1 ] && continue
  mkdir -p "$(dirname "$out")"
  if ! curl -fL --retry 3 -C - "${auth[@]}" -o "$out.part" "$url"; then
    echo "fetch_data.sh: could not download $url (offline? gated repo without HF_TOKEN?)" >&2
    exit 1
  fi
  if [ "$sha" != "-" ] && ! echo "$sha  $out.part" | sha256sum -c --quiet; then
    echo "fetch_data.sh: $out does not match its sha256 $sha; kept as $out.part" >&2
    exit 1
  fi
  mv "$out.part" "$out"
done
# The Gutenberg download carries a licence header and footer; tools/make_chunks strips them.
echo "done: data/ (set GALVANI_DATA=$(pwd)/data to prefer it over ../shared/data)"

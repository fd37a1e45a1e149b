// fuzz_safetensors_index — libFuzzer target for a sharded checkpoint's
// model.safetensors.index.json (io::parse_shard_index, io/sharded.hpp).
//
// Each input is one JSON text. An accepted index is queried as the loader queries it (its
// shards, the tensors of each). A galvani::Error is the expected answer to a bad index
// (including a shard name that would leave the index's folder); anything else is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/io/sharded.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  fuzz::expect_error_or_value([&] {
    const io::json j = io::parse_json_strict(fuzz::as_text(data, size), "fuzz-input");
    const io::ShardIndex idx = io::parse_shard_index(j, "fuzz/model.safetensors.index.json");
    for (const std::string& shard : idx.shards()) {
      // The parser's rule: a plain file name in the index's folder.
      if (shard.empty() || shard.find_first_of("/\\") != std::string::npos || shard == "." || shard == "..")
        __builtin_trap();
      (void)idx.tensors_in(shard);
    }
  });
  return 0;
}

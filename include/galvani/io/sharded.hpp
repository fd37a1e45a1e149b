// io/sharded.hpp — checkpoints split over several safetensors files, and the streaming loader.
//
// Big models are saved as shards plus an index, model.safetensors.index.json:
//
//   {"metadata": {"total_size": 14483464192},
//    "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors",
//                   "model.embed_tokens.weight": "model-00001-of-00002.safetensors", …}}
//
// for_each_tensor() is how a model loads without holding the checkpoint twice: it
// visits a file, an index or a model directory shard by shard, mapping one shard at
// a time and handing each tensor to a callback as a TensorView (dtype string, shape,
// bytes; to_tensor(DType) converts). A 14.5 GB bf16 Mistral streams through while
// at most one ~10 GB shard is mapped — and mapped pages are page cache the kernel
// can drop, not private memory — so converting it to f32 needs the f32 weights
// (29 GB) and nothing more. Tensors within a shard are visited in file order, so
// reads are sequential.
#pragma once
#include <functional>
#include <regex>

#include "safetensors.hpp"

namespace galvani::io {

inline constexpr const char* kSafetensorsWeights = "model.safetensors";
inline constexpr const char* kSafetensorsIndex = "model.safetensors.index.json";

// ------------------------------------------------------------------ the index

struct ShardIndex {
  std::filesystem::path path;                     // the index file
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name (relative to the index)
  json metadata = json::object();                 // {"total_size": …, …}
  std::optional<uint64_t> total_size;

  std::filesystem::path dir() const { return path.parent_path(); }
  // Shard file names, sorted (model-00001-of-… first).
  std::vector<std::string> shards() const {
    std::set<std::string> s;
    for (const auto& [_, f] : weight_map) s.insert(f);
    return {s.begin(), s.end()};
  }
  // Tensor names that live in `shard`.
  std::set<std::string> tensors_in(const std::string& shard) const {
    std::set<std::string> out;
    for (const auto& [n, f] : weight_map)
      if (f == shard) out.insert(n);
    return out;
  }
};

// An index's JSON → ShardIndex, without touching the disk (`path` names the file in errors
// and sets dir()). Throws galvani::Error naming `path` for a non-object, a missing or empty
// "weight_map", an entry that is not a plain file name, or a "metadata" that is not an object.
// The format is the one transformers' save_pretrained writes (see the top of this file).
inline ShardIndex parse_shard_index(const json& j, const std::filesystem::path& path) {
  ShardIndex idx;
  idx.path = path;
  const std::string where = path.string();
  GALVANI_CHECK(j.is_object(), where, ": an index must be a JSON object");
  auto wm = j.find("weight_map");
  GALVANI_CHECK(wm != j.end() && wm->is_object(), where, ": no \"weight_map\" object");
  GALVANI_CHECK(!wm->empty(), where, ": \"weight_map\" is empty");
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    GALVANI_CHECK(it->is_string(), where, ": weight_map entry for tensor '", it.key(), "' must be a file name, got ",
                  it->dump());
    std::string f = it->get<std::string>();
    // A shard is a plain file next to the index: no directories, so an index from the
    // internet cannot point the loader at /etc/passwd or ../../secrets.
    GALVANI_CHECK(!f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos && f != "." &&
                      f != "..",
                  where, ": weight_map entry for tensor '", it.key(), "' names \"", f,
                  "\", which is not a plain file name in the index's directory");
    idx.weight_map[it.key()] = f;
  }
  if (auto md = j.find("metadata"); md != j.end() && !md->is_null()) {
    GALVANI_CHECK(md->is_object(), where, ": \"metadata\" must be an object");
    idx.metadata = *md;
    if (auto ts = md->find("total_size"); ts != md->end() && ts->is_number_unsigned()) idx.total_size = ts->get<uint64_t>();
  }
  return idx;
}

// model.safetensors.index.json → ShardIndex; every shard it names must exist beside it.
// Throws galvani::Error for what parse_shard_index refuses, and for a missing shard.
inline ShardIndex read_shard_index(const std::filesystem::path& path) {
  ShardIndex idx = parse_shard_index(read_json_file(path), path);
  const std::string where = path.string();
  for (const auto& s : idx.shards())
    GALVANI_CHECK(std::filesystem::is_regular_file(idx.dir() / s), where, ": shard ", s,
                  " is missing (expected at ", (idx.dir() / s).string(), "; incomplete download?)");
  return idx;
}

// ------------------------------------------------------------------ what a path names

// A checkpoint path is a .safetensors file, an index, or a directory holding one of them.
struct CheckpointFiles {
  std::optional<ShardIndex> index;             // set when sharded
  std::vector<std::filesystem::path> files;    // the safetensors files, in visiting order
};

inline CheckpointFiles resolve_checkpoint(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  CheckpointFiles cf;
  fs::path p = path;
  if (fs::is_directory(p)) {
    if (fs::exists(p / kSafetensorsIndex)) p = p / kSafetensorsIndex;
    else if (fs::exists(p / kSafetensorsWeights)) p = p / kSafetensorsWeights;
    else
      throw Error(galvani::detail::cat(path.string(), ": no ", kSafetensorsWeights, " or ", kSafetensorsIndex,
                                       " in this directory (only safetensors checkpoints are supported)"));
  }
  GALVANI_CHECK(fs::exists(p), p.string(), ": no such file");
  std::string name = p.filename().string();
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
    cf.index = read_shard_index(p);
    for (const auto& s : cf.index->shards()) cf.files.push_back(cf.index->dir() / s);
  } else {
    cf.files.push_back(p);
  }
  return cf;
}

// ------------------------------------------------------------------ streaming

// f(name, view) for every tensor, shard by shard. The shard's mapping is released
// when its last view (and every zero-copy tensor made from one) is gone.
using TensorCallback = std::function<void(const std::string& name, const TensorView& view)>;

inline void for_each_tensor(const std::filesystem::path& path, const TensorCallback& f,
                            MappedFile::Mode mode = MappedFile::Mode::copy_on_write) {
  CheckpointFiles cf = resolve_checkpoint(path);
  std::set<std::string> seen;
  for (const auto& file : cf.files) {
    SafetensorsFile shard = SafetensorsFile::open(file, mode);
    shard.mapped_file()->advise_sequential();
    if (cf.index) {
      // The index and the shard must agree, both ways.
      const std::string sname = file.filename().string();
      for (const auto& n : cf.index->tensors_in(sname))
        GALVANI_CHECK(shard.contains(n), cf.index->path.string(), ": the index puts tensor '", n, "' in ", sname,
                      ", but that shard does not hold it");
      for (const auto& t : shard.tensors()) {
        auto it = cf.index->weight_map.find(t.name);
        GALVANI_CHECK(it != cf.index->weight_map.end() && it->second == sname, file.string(), ": tensor '", t.name,
                      "' is in this shard but the index ",
                      (it == cf.index->weight_map.end() ? std::string("does not list it") : "puts it in " + it->second));
      }
    }
    for (const auto& v : shard.views()) {
      GALVANI_CHECK(seen.insert(v.name()).second, file.string(), ": tensor '", v.name(), "' appears in two files");
      f(v.name(), v);
    }
  }
}

// The whole checkpoint as one StateDict (zero-copy views unless opts say otherwise).
inline StateDict load_checkpoint(const std::filesystem::path& path, const LoadOptions& opts = {}) {
  StateDict sd;
  for_each_tensor(path, [&](const std::string& name, const TensorView& v) { SafetensorsFile::add_to(sd, v, opts, name); });
  return sd;
}

// ------------------------------------------------------------------ writing shards

// "5GB" -> 5'000'000'000, "500MiB" -> 524'288'000, "4KB" -> 4000, "123" -> 123
// (transformers' convert_file_size_to_int: KB/MB/GB are powers of 10, KiB/MiB/GiB of 2).
inline uint64_t parse_size(const std::string& s) {
  static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|[kmgt]i?b|[KMGT]i?b|B|b)?\s*$)");
  std::smatch m;
  GALVANI_CHECK(std::regex_match(s, m, re), "parse_size: \"", s, "\" is not a size like 5GB, 500MiB or 1024");
  double v = std::stod(m[1].str());
  std::string u = m[2].str();
  for (auto& c : u) c = char(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (u == "KB") mult = 1e3; else if (u == "MB") mult = 1e6; else if (u == "GB") mult = 1e9; else if (u == "TB") mult = 1e12;
  else if (u == "KIB") mult = 1024.0; else if (u == "MIB") mult = 1048576.0; else if (u == "GIB") mult = 1073741824.0;
  else if (u == "TIB") mult = 1099511627776.0;
  return uint64_t(v * mult);
}

// Which tensors go in which shard: huggingface_hub's split_state_dict_into_shards.
// In state-dict order, a tensor joins the current shard unless that would pass
// `max_shard_size`; a tensor bigger than the limit gets a shard of its own.
inline std::vector<std::vector<const StateEntry*>> plan_shards(const StateDict& sd, uint64_t max_shard_size) {
  std::vector<std::vector<const StateEntry*>> shards;
  std::vector<const StateEntry*> cur;
  uint64_t cur_size = 0;
  for (const auto& e : sd) {
    uint64_t n = e.nbytes();
    if (n > max_shard_size) {
      shards.push_back({&e});
      continue;
    }
    if (cur_size + n > max_shard_size && !cur.empty()) {
      shards.push_back(std::move(cur));
      cur.clear();
      cur_size = 0;
    }
    cur.push_back(&e);
    cur_size += n;
  }
  if (!cur.empty()) shards.push_back(std::move(cur));
  return shards;
}

struct ShardedSaveOptions {
  uint64_t max_shard_size = 5'000'000'000;  // transformers' default "5GB"
  Metadata metadata = {{"format", "pt"}};   // written in every shard, as transformers does
};

// Writes `dir`/model.safetensors, or when the state dict exceeds max_shard_size,
// model-0000i-of-0000n.safetensors plus model.safetensors.index.json. Stale weight
// files from an earlier save into the same directory are removed, as transformers
// does, so the directory never holds two checkpoints. Returns the files written.
inline std::vector<std::filesystem::path> save_checkpoint(const std::filesystem::path& dir, const StateDict& sd,
                                                          const ShardedSaveOptions& opts = {}) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto plan = plan_shards(sd, opts.max_shard_size);
  std::vector<fs::path> written;
  json weight_map = json::object();
  uint64_t total_size = 0, total_params = 0;
  if (plan.size() <= 1) {
    written.push_back(dir / kSafetensorsWeights);
    save_safetensors(written.back(), sd, opts.metadata);
  } else {
    for (size_t i = 0; i < plan.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, plan.size());
      StateDict shard;
      for (const StateEntry* e : plan[i]) {
        if (e->is_raw()) shard.insert_raw(e->name, e->raw_dtype, e->raw_shape, e->tensor);
        else shard.insert(e->name, e->tensor);
        weight_map[e->name] = name;
      }
      written.push_back(dir / name);
      save_safetensors(written.back(), shard, opts.metadata);
    }
  }
  for (const auto& e : sd) {
    total_size += e.nbytes();
    total_params += uint64_t(numel_of(e.shape()));
  }
  if (plan.size() > 1) {
    json idx = {{"metadata", {{"total_size", total_size}, {"total_parameters", total_params}}},
                {"weight_map", weight_map}};
    written.push_back(dir / kSafetensorsIndex);
    write_json_file(written.back(), idx);
  }
  // Remove weight files of an earlier save that this one did not write.
  static const std::regex stale(R"(^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$)");
  for (const auto& de : fs::directory_iterator(dir)) {
    std::string n = de.path().filename().string();
    if (std::regex_match(n, stale) && std::find(written.begin(), written.end(), de.path()) == written.end())
      fs::remove(de.path());
  }
  return written;
}

}  // namespace galvani::io

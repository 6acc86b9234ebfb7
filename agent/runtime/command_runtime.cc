#include "agent/runtime/command_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace maplex::agent {
namespace {

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CommandRuntime::CommandRuntime(CommandRuntimeOptions options) : options_(std::move(options)) {}

CommandRuntime::~CommandRuntime() { Stop(/*grace_ms=*/2000); }

std::string CommandRuntime::name() const {
  const size_t slash = options_.program.rfind('/');
  return absl::StrCat("command:", slash == std::string::npos ? options_.program
                                                             : options_.program.substr(slash + 1));
}

absl::Status CommandRuntime::Prepare(const core::Architecture& arch, int batch, int threads) {
  if (absl::Status valid = ValidateRuntimeConfig(batch, threads); !valid.ok()) return valid;
  if (arch.space() == nullptr) return UnsupportedSpaceError(name(), arch);
  Stop(/*grace_ms=*/2000);
  std::vector<std::string> args = {options_.program};
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  if (arch.space() == &core::Nb201Space::Get()) {
    // Exactly the arguments of protocol version 1, so NB201-only programs keep working.
    args.push_back(absl::StrCat("--cell=", arch.ToString()));
  } else {
    args.push_back(absl::StrCat("--space=", std::string(arch.space()->name())));
    args.push_back(absl::StrCat("--arch=", arch.ToString()));
  }
  args.push_back(absl::StrCat("--batch=", batch));
  args.push_back(absl::StrCat("--threads=", threads));
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return absl::UnavailableError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  // Its own process group, so that a forced stop also ends whatever it started.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  const int error =
      posix_spawnp(&child_, options_.program.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  if (error != 0) {
    child_ = -1;
    Stop(0);
    return absl::UnavailableError(
        absl::StrCat("cannot start ", options_.program, ": ", std::strerror(error)));
  }
  absl::StatusOr<std::string> ready = ReadLine();
  if (!ready.ok()) return ready.status();
  if (!absl::StartsWith(*ready, "ready")) {
    Stop(0);
    return absl::UnavailableError(
        absl::StrCat(options_.program, " answered \"", *ready, "\" instead of \"ready\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<double>> CommandRuntime::Run() {
  if (child_ < 0) return absl::FailedPreconditionError("CommandRuntime::Run before Prepare");
  if (absl::Status written = WriteLine("run"); !written.ok()) return written;
  absl::StatusOr<std::string> reply = ReadLine();
  if (!reply.ok()) return reply.status();
  if (absl::StartsWith(*reply, "error")) {
    return absl::InternalError(absl::StrCat(options_.program, ": ", *reply));
  }
  double millis;
  if (!absl::SimpleAtod(*reply, &millis) || !std::isfinite(millis) || millis <= 0) {
    return absl::InternalError(
        absl::StrCat(options_.program, " replied \"", *reply, "\", not a positive latency in ms"));
  }
  return std::optional<double>(millis);
}

absl::StatusOr<std::vector<float>> CommandRuntime::Output() const {
  return absl::UnimplementedError("the command runtime's output stays with the program");
}

absl::StatusOr<std::string> CommandRuntime::ReadLine() {
  const int64_t deadline = NowMillis() + options_.reply_timeout_ms;
  while (true) {
    const size_t newline = pending_.find('\n');
    if (newline != std::string::npos) {
      std::string line(absl::StripAsciiWhitespace(pending_.substr(0, newline)));
      pending_.erase(0, newline + 1);
      return line;
    }
    const int64_t left = deadline - NowMillis();
    pollfd fd = {from_child_, POLLIN, 0};
    const int ready = left > 0 ? poll(&fd, 1, static_cast<int>(left)) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      Stop(0);
      return absl::DeadlineExceededError(absl::StrCat(options_.program, " sent no reply within ",
                                                      options_.reply_timeout_ms, " ms"));
    }
    char buffer[4096];
    const ssize_t got = read(from_child_, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return absl::UnavailableError(
          absl::StrCat(options_.program, " closed its output: ", DescribeExit()));
    }
    pending_.append(buffer, got);
  }
}

absl::Status CommandRuntime::WriteLine(const std::string& line) {
  // A program that died would raise SIGPIPE; block it for this thread and take the
  // EPIPE instead, then drop the pending signal so it is never delivered.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  const std::string text = line + "\n";
  const ssize_t wrote = write(to_child_, text.data(), text.size());
  const int error = errno;
  if (wrote < 0 && error == EPIPE) {
    const timespec zero = {0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (wrote != static_cast<ssize_t>(text.size())) {
    return absl::UnavailableError(absl::StrCat(
        options_.program, " stopped reading: ", std::strerror(error), "; ", DescribeExit()));
  }
  return absl::OkStatus();
}

std::string CommandRuntime::DescribeExit() {
  if (child_ < 0) return "not running";
  int status = 0;
  // The program may still be flushing its exit; give it a moment.
  for (int i = 0; i < 100; ++i) {
    const pid_t done = waitpid(child_, &status, WNOHANG);
    if (done == child_) {
      child_ = -1;
      if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
      if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
      return "ended";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return "still running";
}

void CommandRuntime::Stop(int grace_ms) {
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  to_child_ = from_child_ = -1;
  pending_.clear();
  if (child_ < 0) return;
  const int64_t deadline = NowMillis() + grace_ms;
  int status;
  while (waitpid(child_, &status, WNOHANG) == 0) {
    if (NowMillis() >= deadline) {
      kill(-child_, SIGKILL);  // the whole process group
      waitpid(child_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  child_ = -1;
}

}  // namespace maplex::agent

// A temporary directory for a test, removed with the object.
#ifndef MAPLEX_TESTS_TESTING_TEMP_DIR_H_
#define MAPLEX_TESTS_TESTING_TEMP_DIR_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace maplex::testing {

// A directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("maplex_" + std::string(info ? info->name() : "test") + "_" +
             std::to_string(getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace maplex::testing

#endif  // MAPLEX_TESTS_TESTING_TEMP_DIR_H_

#include "client/data_files.h"

#include <zlib.h>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace maplex::client {
namespace {

TEST(DataFilesTest, ReadsPlainAndGzippedFiles) {
  maplex::testing::TempDir dir;
  ASSERT_TRUE(WriteTextFile(dir.File("plain.csv"), "a,b\n1,2\n").ok());
  EXPECT_EQ(*ReadMaybeGzippedFile(dir.File("plain.csv")), "a,b\n1,2\n");
  gzFile gz = gzopen(dir.File("packed.csv.gz").c_str(), "wb");
  gzputs(gz, "x,y\n3,4\n");
  gzclose(gz);
  EXPECT_EQ(*ReadMaybeGzippedFile(dir.File("packed.csv.gz")), "x,y\n3,4\n");
}

TEST(DataFilesTest, MissingFileIsNotFoundAndTruncatedGzipIsDataLoss) {
  maplex::testing::TempDir dir;
  EXPECT_EQ(ReadMaybeGzippedFile(dir.File("none")).status().code(), absl::StatusCode::kNotFound);
  std::string big(100000, 'q');
  gzFile gz = gzopen(dir.File("t.gz").c_str(), "wb");
  gzwrite(gz, big.data(), big.size());
  gzclose(gz);
  std::string bytes = *ReadMaybeGzippedFile(dir.File("t.gz"));  // sanity: reads back
  ASSERT_EQ(bytes, big);
  // Cut the compressed file in half.
  FILE* f = fopen(dir.File("t.gz").c_str(), "rb");
  std::string raw(1 << 20, '\0');
  raw.resize(fread(raw.data(), 1, raw.size(), f));
  fclose(f);
  ASSERT_TRUE(WriteTextFile(dir.File("cut.gz"), raw.substr(0, raw.size() / 2)).ok());
  EXPECT_EQ(ReadMaybeGzippedFile(dir.File("cut.gz")).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace maplex::client

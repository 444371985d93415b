#include "dataplane/features/source/table_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "lib/http/http_server.h"

namespace sluice::features {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = SLUICE_FEATURE_FIXTURES;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ColumnType TypeFromName(const std::string& n) {
  for (ColumnType t :
       {ColumnType::kInt32, ColumnType::kInt64, ColumnType::kFloat, ColumnType::kDouble,
        ColumnType::kBool, ColumnType::kString, ColumnType::kBytes, ColumnType::kTimestamp}) {
    if (ColumnTypeName(t) == n) return t;
  }
  ADD_FAILURE() << "unknown type " << n;
  return ColumnType::kInt64;
}

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// A scratch directory of the test's own, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sluice-source-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path Write(const std::string& name, const std::string& content) const {
    fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  fs::path path_;
};

struct Expected {
  std::string file;
  std::vector<size_t> chunks;
  std::vector<ColumnRequest> requests;
  json columns;
};

Expected LoadExpected(const std::string& fixture) {
  json j = json::parse(ReadAll(kFixtures / (fixture + ".expected.json")));
  Expected e;
  e.file = j["file"];
  for (const auto& c : j["chunks"]) e.chunks.push_back(c.get<size_t>());
  e.columns = j["columns"];
  for (const auto& c : e.columns) e.requests.push_back({c["name"], TypeFromName(c["type"])});
  return e;
}

// Reads every chunk, checking chunk sizes, then compares every value with expected.json.
void CheckAgainstExpected(const Expected& e, TableReader& reader) {
  Chunk chunk;  // reused across Next calls, as the materializer does
  size_t chunk_index = 0;
  size_t row0 = 0;
  while (true) {
    auto more = reader.Next(chunk);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_LT(chunk_index, e.chunks.size());
    ASSERT_EQ(chunk.rows, e.chunks[chunk_index]) << "chunk " << chunk_index;
    ASSERT_EQ(chunk.columns.size(), e.requests.size());
    for (size_t c = 0; c < e.requests.size(); ++c) {
      const Column& col = chunk.columns[c];
      const json& values = e.columns[c]["values"];
      SCOPED_TRACE(e.file + " column " + col.name + " as " + std::string(ColumnTypeName(col.type)));
      ASSERT_EQ(col.name, e.requests[c].name);
      ASSERT_EQ(col.type, e.requests[c].type);
      ASSERT_EQ(col.valid.size(), chunk.rows);
      for (size_t r = 0; r < chunk.rows; ++r) {
        const json& want = values.at(row0 + r);
        SCOPED_TRACE("row " + std::to_string(row0 + r));
        if (want.is_null()) {
          EXPECT_EQ(col.valid[r], 0);
          continue;
        }
        ASSERT_EQ(col.valid[r], 1);
        switch (col.type) {
          case ColumnType::kInt32:
          case ColumnType::kInt64:
          case ColumnType::kBool:
          case ColumnType::kTimestamp:
            ASSERT_EQ(col.ints.size(), chunk.rows);
            EXPECT_EQ(col.ints[r], want.get<int64_t>());
            break;
          case ColumnType::kFloat:
          case ColumnType::kDouble:
            ASSERT_EQ(col.doubles.size(), chunk.rows);
            EXPECT_EQ(col.doubles[r], want.get<double>());  // exact: same bits as pyarrow's
            break;
          case ColumnType::kString:
            ASSERT_EQ(col.strings.size(), chunk.rows);
            EXPECT_EQ(col.strings[r], want.get<std::string>());
            break;
          case ColumnType::kBytes:
            ASSERT_EQ(col.strings.size(), chunk.rows);
            EXPECT_EQ(Hex(col.strings[r]), want.get<std::string>());
            break;
        }
      }
    }
    row0 += chunk.rows;
    ++chunk_index;
  }
  EXPECT_EQ(chunk_index, e.chunks.size());
  EXPECT_EQ(reader.rows_read(), row0);
  EXPECT_EQ(row0, e.columns[0]["values"].size());
  // The end stays the end.
  auto again = reader.Next(chunk);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

class FixtureTest : public testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, MatchesWhatPyarrowWrote) {
  Expected e = LoadExpected(GetParam());
  SourceOptions o;
  o.uri = (kFixtures / e.file).string();
  o.columns = e.requests;
  o.csv_chunk_rows = e.chunks[0];
  auto reader = OpenSource(o);
  ASSERT_TRUE(reader.ok()) << reader.status();
  CheckAgainstExpected(e, **reader);
}

TEST_P(FixtureTest, ReadsThroughAFileUriWithTheFormatNamed) {
  Expected e = LoadExpected(GetParam());
  SourceOptions o;
  o.uri = "file://" + (kFixtures / e.file).string();
  o.format = e.file.ends_with(".csv") ? "csv" : "parquet";
  o.columns = e.requests;
  o.csv_chunk_rows = e.chunks[0];
  auto reader = OpenSource(o);
  ASSERT_TRUE(reader.ok()) << reader.status();
  CheckAgainstExpected(e, **reader);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest,
                         testing::Values("plain_none_v1.parquet", "dict_snappy_v1.parquet",
                                         "plain_gzip_v2.parquet", "dict_zstd_v2.parquet",
                                         "pages_snappy_v1.parquet", "timestamps.parquet",
                                         "int96.parquet", "nested.parquet", "pandas.csv",
                                         "spellings.csv"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

Status OpenAndReadAll(const SourceOptions& o) {
  auto reader = OpenSource(o);
  if (!reader.ok()) return reader.status();
  Chunk chunk;
  while (true) {
    auto more = (*reader)->Next(chunk);
    if (!more.ok()) return more.status();
    if (!*more) return Status::Ok();
  }
}

SourceOptions Options(const std::string& file, std::vector<ColumnRequest> columns) {
  SourceOptions o;
  o.uri = (kFixtures / file).string();
  o.columns = std::move(columns);
  return o;
}

TEST(TableReaderErrors, MissingColumnIsNamedWithTheFilesColumns) {
  for (const char* file : {"plain_none_v1.parquet", "pandas.csv"}) {
    Status s = OpenAndReadAll(Options(
        file, {{"card_id", ColumnType::kString}, {"velocity_last_24h", ColumnType::kInt32}}));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << file;
    EXPECT_NE(s.message().find("column \"velocity_last_24h\" is not in the"), std::string::npos)
        << s;
    EXPECT_NE(s.message().find("card_id, merchant_id, i32"), std::string::npos) << s;
    EXPECT_NE(s.message().find(file), std::string::npos) << s;
  }
}

TEST(TableReaderErrors, WrongTypeNamesTheFileTypeAndTheRequestedOne) {
  Status s = OpenAndReadAll(Options("dict_snappy_v1.parquet", {{"name", ColumnType::kInt32}}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(
                "column \"name\" is a string (BYTE_ARRAY/UTF8); the FeatureView declares INT32"),
            std::string::npos)
      << s;

  s = OpenAndReadAll(Options("plain_none_v1.parquet", {{"f64", ColumnType::kInt64}}));
  EXPECT_NE(s.message().find("column \"f64\" is a double (DOUBLE); the FeatureView declares INT64"),
            std::string::npos)
      << s;
  s = OpenAndReadAll(Options("timestamps.parquet", {{"ts_us_utc", ColumnType::kInt64}}));
  EXPECT_NE(s.message().find("is a timestamp (INT64/TIMESTAMP(MICROS, UTC)); the FeatureView "
                             "declares INT64"),
            std::string::npos)
      << s;
  s = OpenAndReadAll(Options("plain_none_v1.parquet", {{"i64", ColumnType::kTimestamp}}));
  EXPECT_NE(s.message().find("is an integer (INT64); the FeatureView declares UNIX_TIMESTAMP"),
            std::string::npos)
      << s;
}

TEST(TableReaderErrors, NarrowingOutOfRangeNamesTheValueAndRow) {
  Status s = OpenAndReadAll(Options("wide_int.parquet", {{"v", ColumnType::kInt32}}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("column \"v\""), std::string::npos) << s;
  EXPECT_NE(s.message().find("row 2: value 3000000000 does not fit INT32"), std::string::npos) << s;
  EXPECT_TRUE(OpenAndReadAll(Options("wide_int.parquet", {{"v", ColumnType::kInt64}})).ok());
}

TEST(TableReaderErrors, RequestedNestedColumnIsRefusedByName) {
  Status s = OpenAndReadAll(Options("nested.parquet", {{"tags", ColumnType::kString}}));
  EXPECT_NE(s.message().find("column \"tags\" is nested or repeated"), std::string::npos) << s;
  s = OpenAndReadAll(Options("nested.parquet", {{"point", ColumnType::kInt32}}));
  EXPECT_NE(s.message().find("column \"point\" is nested or repeated"), std::string::npos) << s;
}

TEST(TableReaderErrors, DeltaEncodingIsRefusedClearly) {
  Status s = OpenAndReadAll(Options("delta.parquet", {{"v", ColumnType::kInt64}}));
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s;
  EXPECT_NE(s.message().find("DELTA_BINARY_PACKED is not supported"), std::string::npos) << s;
  EXPECT_NE(s.message().find("column \"v\""), std::string::npos) << s;
}

TEST(TableReaderErrors, UnsupportedSchemeAndUnknownExtension) {
  SourceOptions o;
  o.uri = "s3://fraud-features/merchant_features.csv";
  auto r = OpenSource(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("s3:// scheme is not supported yet"), std::string::npos)
      << r.status();

  o.uri = "relative/path.parquet";
  EXPECT_EQ(OpenSource(o).status().code(), StatusCode::kInvalidArgument);

  o.uri = (kFixtures / "plain_none_v1.parquet.expected.json").string();
  r = OpenSource(o);
  EXPECT_NE(r.status().message().find("must end in .parquet or .csv"), std::string::npos)
      << r.status();

  o.uri = (kFixtures / "no-such-file.parquet").string();
  EXPECT_EQ(OpenSource(o).status().code(), StatusCode::kNotFound);
}

TEST(TableReaderErrors, CsvBadValueNamesFileLineAndColumn) {
  TempDir dir;
  // Line 4 is the bad one: the quoted line break in record 2 counts as a line.
  fs::path p = dir.Write("bad.csv", "id,v\n1,\"a\nb\"\n2,x\n3,oops\n");
  SourceOptions o;
  o.uri = p.string();
  o.columns = {{"id", ColumnType::kInt32}, {"v", ColumnType::kString}};
  EXPECT_TRUE(OpenAndReadAll(o).ok());
  o.columns = {{"v", ColumnType::kInt64}};
  Status s = OpenAndReadAll(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad.csv line 2: column \"v\": \"a\nb\" is not an INT64"),
            std::string::npos)
      << s;

  p = dir.Write("fields.csv", "id,v\n1,2\n3,4,5\n");
  o.uri = p.string();
  o.columns = {{"id", ColumnType::kInt64}};
  s = OpenAndReadAll(o);
  EXPECT_NE(s.message().find("fields.csv line 3: 3 fields where the header has 2"),
            std::string::npos)
      << s;

  p = dir.Write("range.csv", "id\n1\n\"2\"\n3000000000\n");
  o.uri = p.string();
  o.columns = {{"id", ColumnType::kInt32}};
  s = OpenAndReadAll(o);
  EXPECT_NE(
      s.message().find("range.csv line 4: column \"id\": value 3000000000 does not fit INT32"),
      std::string::npos)
      << s;

  p = dir.Write("quote.csv", "id,v\n1,\"never closed\n2,3\n");
  o.uri = p.string();
  s = OpenAndReadAll(o);
  EXPECT_NE(s.message().find("not closed"), std::string::npos) << s;

  p = dir.Write("empty.csv", "");
  o.uri = p.string();
  s = OpenAndReadAll(o);
  EXPECT_NE(s.message().find("a header line is required"), std::string::npos) << s;
}

// Records that cross the reader's 1 MiB blocks, quoted ones included, come out whole.
TEST(TableReaderCsv, RecordsSpanningReadBlocks) {
  TempDir dir;
  std::string text = "k,v\n";
  std::vector<std::string> want;
  for (int i = 0; i < 40000; ++i) {
    std::string v = (i % 3 == 0) ? "say \"hi\",\nthen " + std::to_string(i) : std::to_string(i);
    want.push_back(v);
    std::string quoted = "\"";
    for (char c : v) {
      quoted += c;
      if (c == '"') quoted += '"';
    }
    text += std::to_string(i) + "," + quoted + "\"\r\n";
  }
  SourceOptions o;
  o.uri = dir.Write("big.csv", text).string();
  o.columns = {{"v", ColumnType::kString}, {"k", ColumnType::kInt64}};
  o.csv_chunk_rows = 7000;
  auto reader = OpenSource(o);
  ASSERT_TRUE(reader.ok()) << reader.status();
  Chunk chunk;
  size_t row = 0;
  while (true) {
    auto more = (*reader)->Next(chunk);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    for (size_t r = 0; r < chunk.rows; ++r, ++row) {
      ASSERT_EQ(chunk.columns[0].strings[r], want[row]);
      ASSERT_EQ(chunk.columns[1].ints[r], static_cast<int64_t>(row));
    }
  }
  EXPECT_EQ(row, want.size());
}

const std::vector<std::string> kParquetFixtures = {
    "plain_none_v1.parquet", "dict_snappy_v1.parquet",  "plain_gzip_v2.parquet",
    "dict_zstd_v2.parquet",  "pages_snappy_v1.parquet", "timestamps.parquet",
    "int96.parquet"};

// A truncated file is an error at open or at a chunk, never a crash or a silent short read.
TEST(TableReaderCorrupt, TruncatedFilesAreErrors) {
  TempDir dir;
  for (const std::string& f : kParquetFixtures) {
    Expected e = LoadExpected(f);
    std::string bytes = ReadAll(kFixtures / f);
    for (size_t cut : {size_t{0}, size_t{3}, size_t{11}, size_t{100}, bytes.size() / 2,
                       bytes.size() - 9, bytes.size() - 1}) {
      SourceOptions o;
      o.uri = dir.Write("cut.parquet", bytes.substr(0, cut)).string();
      o.columns = e.requests;
      Status s = OpenAndReadAll(o);
      EXPECT_FALSE(s.ok()) << f << " cut at " << cut;
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
    }
  }
}

// Flipped bytes anywhere: every run ends in an answer (value or error), never a crash, a hang or
// an out-of-bounds read (run under ASan by make test-asan).
TEST(TableReaderCorrupt, FlippedBytesNeverCrash) {
  TempDir dir;
  std::mt19937 rng(12345);
  // SLUICE_FLIP_RUNS raises the count for a longer soak under ASan.
  const char* env = std::getenv("SLUICE_FLIP_RUNS");
  const int flips_per_file = env != nullptr ? std::atoi(env) : 150;
  size_t errors = 0, runs = 0;
  for (const std::string& f : kParquetFixtures) {
    Expected e = LoadExpected(f);
    const std::string bytes = ReadAll(kFixtures / f);
    for (int i = 0; i < flips_per_file; ++i) {
      std::string broken = bytes;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) {
        // Half the flips land in the footer, where the structure lives.
        size_t footer = std::min<size_t>(bytes.size(), 1500);
        size_t pos = (rng() % 2) ? bytes.size() - 1 - rng() % footer : rng() % bytes.size();
        broken[pos] = static_cast<char>(broken[pos] ^ (1u << (rng() % 8)));
      }
      SourceOptions o;
      o.uri = dir.Write("flip.parquet", broken).string();
      o.columns = e.requests;
      ++runs;
      if (!OpenAndReadAll(o).ok()) ++errors;
    }
  }
  // Most flips must be caught; a few land in value bytes and read as other values.
  EXPECT_GT(errors, runs / 4);
}

// The same for CSV, with the quotes and line breaks a flip can unbalance.
TEST(TableReaderCorrupt, FlippedCsvBytesNeverCrash) {
  TempDir dir;
  std::mt19937 rng(54321);
  const char* env = std::getenv("SLUICE_FLIP_RUNS");
  const int flips_per_file = env != nullptr ? std::atoi(env) : 150;
  for (const std::string f : {"pandas.csv", "spellings.csv"}) {
    Expected e = LoadExpected(f);
    const std::string bytes = ReadAll(kFixtures / f);
    for (int i = 0; i < flips_per_file; ++i) {
      std::string broken = bytes;
      size_t pos = rng() % bytes.size();
      // Flip to a byte that matters to the parser half the time.
      const char special[] = {'"', ',', '\n', '\r', '\0'};
      broken[pos] =
          (rng() % 2) ? special[rng() % 5] : static_cast<char>(broken[pos] ^ (1u << (rng() % 8)));
      SourceOptions o;
      o.uri = dir.Write("flip.csv", broken).string();
      o.columns = e.requests;
      o.csv_chunk_rows = 4;
      (void)OpenAndReadAll(o);  // any answer will do; a crash or hang fails the test
    }
  }
}

// An http(s) source is downloaded and read like a local one; a 404 names the URL and status.
TEST(TableReaderHttp, DownloadsAndReportsHttpErrors) {
  const std::string body = ReadAll(kFixtures / "dict_snappy_v1.parquet");
  auto router = std::make_shared<HttpRouter>();
  router->Handle(HttpVerb::get, "/features/cards.parquet",
                 [&body](const HttpRequest&, Responder r) {
                   r.SendBody(HttpStatus::ok, "application/octet-stream", body);
                 });
  HttpServerOptions so;
  so.io_threads = 1;
  auto server = HttpServer::Create(so, router);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());

  Expected e = LoadExpected("dict_snappy_v1.parquet");
  SourceOptions o;
  o.uri = base + "/features/cards.parquet?version=3";
  o.columns = e.requests;
  auto reader = OpenSource(o);
  ASSERT_TRUE(reader.ok()) << reader.status();
  CheckAgainstExpected(e, **reader);

  o.uri = base + "/features/missing.parquet";
  auto missing = OpenSource(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().http_status(), 404);
  EXPECT_EQ(missing.status().message(), "GET " + o.uri + ": HTTP 404");

  // Nothing listens on the port once the server is gone: a connection error naming the URL.
  (*server)->Shutdown();
  server->reset();
  o.uri = base + "/features/cards.parquet";
  auto refused = OpenSource(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("GET " + o.uri + ": "), std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace sluice::features

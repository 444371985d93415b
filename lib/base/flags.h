#pragma once

// One command-line parser for every Sluice binary. A program declares its flags once, each bound
// to a field; the same declaration parses argv, prints the usage text and, for the command lines
// one process writes for another (lib/api/server_command.h), turns the fields back into argv.
//
// Accepted forms: `--name=value`, `--name value`; booleans also bare `--name` (true) and
// `--no-name` (false). `-h` is `--help` when a help flag is declared. A flag given twice takes the
// last value. Durations are Go-style text ("500us", "1ms", "60s", "1m30s"). Every error is
// InvalidArgument and names the flag.
//
// A FlagSet holds pointers to the bound fields: it must not outlive them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/duration.h"
#include "lib/base/status.h"

namespace sluice {

class FlagSet {
 public:
  // How a value of type T is read from and written to the command line.
  template <typename T>
  struct Codec {
    std::string value_name;  // shown in the usage text: --name=VALUE_NAME
    std::function<Result<T>(const std::string&)> parse;
    std::function<std::string(const T&)> format;
  };

  FlagSet() = default;
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // Plain fields: parsing overwrites them; ToArgs always writes them.
  void String(std::string name, std::string* dst, std::string help);
  void Int(std::string name, int64_t* dst, int64_t min, int64_t max, std::string help);
  void Int(std::string name, int32_t* dst, int32_t min, int32_t max, std::string help);
  void Bool(std::string name, bool* dst, std::string help);
  // Sub-unit parts of the text are truncated to the field's unit ("1500ms" is 1s in seconds).
  template <typename Rep, typename Period>
  void Duration(std::string name, std::chrono::duration<Rep, Period>* dst,
                std::chrono::nanoseconds min, std::chrono::nanoseconds max, std::string help) {
    Add(std::move(name), dst, DurationCodec<std::chrono::duration<Rep, Period>>(min, max),
        std::move(help));
  }

  // Optional fields: absent until given; ToArgs writes only those that hold a value.
  void String(std::string name, std::optional<std::string>* dst, std::string help);
  void Int(std::string name, std::optional<int64_t>* dst, int64_t min, int64_t max,
           std::string help);
  void Int(std::string name, std::optional<int32_t>* dst, int32_t min, int32_t max,
           std::string help);
  void Bool(std::string name, std::optional<bool>* dst, std::string help);
  template <typename Rep, typename Period>
  void Duration(std::string name, std::optional<std::chrono::duration<Rep, Period>>* dst,
                std::chrono::nanoseconds min, std::chrono::nanoseconds max, std::string help) {
    Add(std::move(name), dst, DurationCodec<std::chrono::duration<Rep, Period>>(min, max),
        std::move(help));
  }

  // Any other type, read and written by `codec` (an enum, an address, a list).
  template <typename T>
  void Add(std::string name, T* dst, Codec<T> codec, std::string help) {
    AddFlag(Flag{
        std::move(name), codec.value_name, std::move(help), IsBool<T>(),
        [dst, parse = codec.parse](const std::string& v) -> Status {
          ASSIGN_OR_RETURN(*dst, parse(v));
          return Status::Ok();
        },
        [dst, format = codec.format]() -> std::optional<std::string> { return format(*dst); }});
  }
  template <typename T>
  void Add(std::string name, std::optional<T>* dst, Codec<T> codec, std::string help) {
    AddFlag(Flag{std::move(name), codec.value_name, std::move(help), IsBool<T>(),
                 [dst, parse = codec.parse](const std::string& v) -> Status {
                   ASSIGN_OR_RETURN(T value, parse(v));
                   *dst = std::move(value);
                   return Status::Ok();
                 },
                 [dst, format = codec.format]() -> std::optional<std::string> {
                   if (!dst->has_value()) return std::nullopt;
                   return format(**dst);
                 }});
  }

  // Sets the bound fields from `args` (argv without the program name), left to right.
  Status Parse(const std::vector<std::string>& args) const;

  // "--name=value" for every flag that has a value to pass, in declaration order. Parse of the
  // result sets the same values.
  std::vector<std::string> ToArgs() const;

  // One line per flag, in declaration order: "  --name=VALUE  help (default: current value)".
  // Bind the flags to a struct holding the defaults to show them.
  std::string Usage() const;

  // The codecs behind the typed bindings, for Add. Their errors need not name the flag: Parse
  // puts "--name: " in front.
  static Codec<std::string> StringCodec();
  static Codec<int64_t> IntCodec(int64_t min, int64_t max);
  static Codec<int32_t> Int32Codec(int32_t min, int32_t max);
  static Codec<bool> BoolCodec();
  // A string that must be one of `allowed`; the usage shows them as `value_name`.
  static Codec<std::string> OneOf(std::string value_name, std::vector<std::string> allowed);
  static Codec<std::chrono::nanoseconds> NanosCodec(std::chrono::nanoseconds min,
                                                    std::chrono::nanoseconds max);
  template <typename D>
  static Codec<D> DurationCodec(std::chrono::nanoseconds min, std::chrono::nanoseconds max) {
    Codec<std::chrono::nanoseconds> nanos = NanosCodec(min, max);
    return Codec<D>{nanos.value_name,
                    [parse = nanos.parse](const std::string& v) -> Result<D> {
                      ASSIGN_OR_RETURN(std::chrono::nanoseconds d, parse(v));
                      return std::chrono::duration_cast<D>(d);
                    },
                    [](const D& d) { return FormatGoDuration(d); }};
  }

 private:
  struct Flag {
    std::string name;
    std::string value_name;
    std::string help;
    bool is_bool = false;
    std::function<Status(const std::string&)> set;
    std::function<std::optional<std::string>()> get;
  };

  template <typename T>
  static constexpr bool IsBool() {
    return std::is_same_v<T, bool>;
  }
  void AddFlag(Flag flag);
  const Flag* Find(const std::string& name) const;

  std::vector<Flag> flags_;
};

}  // namespace sluice

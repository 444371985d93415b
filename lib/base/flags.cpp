#include "lib/base/flags.h"

#include <charconv>

namespace sluice {

FlagSet::Codec<std::string> FlagSet::StringCodec() {
  return {"TEXT", [](const std::string& v) -> Result<std::string> { return v; },
          [](const std::string& v) { return v; }};
}

FlagSet::Codec<int64_t> FlagSet::IntCodec(int64_t min, int64_t max) {
  return {"N",
          [min, max](const std::string& v) -> Result<int64_t> {
            int64_t out = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
            if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
              return InvalidArgument("\"" + v + "\" is not an integer");
            }
            if (out < min || out > max) {
              return InvalidArgument(v + " is outside [" + std::to_string(min) + ", " +
                                     std::to_string(max) + "]");
            }
            return out;
          },
          [](const int64_t& v) { return std::to_string(v); }};
}

FlagSet::Codec<int32_t> FlagSet::Int32Codec(int32_t min, int32_t max) {
  Codec<int64_t> wide = IntCodec(min, max);
  return {wide.value_name,
          [parse = wide.parse](const std::string& v) -> Result<int32_t> {
            ASSIGN_OR_RETURN(int64_t out, parse(v));
            return static_cast<int32_t>(out);
          },
          [](const int32_t& v) { return std::to_string(v); }};
}

FlagSet::Codec<bool> FlagSet::BoolCodec() {
  return {"BOOL",
          [](const std::string& v) -> Result<bool> {
            if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
            if (v == "false" || v == "0" || v == "off" || v == "no") return false;
            return InvalidArgument("\"" + v + "\" is not a boolean (true/false, on/off)");
          },
          [](const bool& v) { return std::string(v ? "true" : "false"); }};
}

FlagSet::Codec<std::string> FlagSet::OneOf(std::string value_name,
                                           std::vector<std::string> allowed) {
  return {std::move(value_name),
          [allowed](const std::string& v) -> Result<std::string> {
            std::string list;
            for (const std::string& a : allowed) {
              if (v == a) return v;
              list += (list.empty() ? "" : ", ") + a;
            }
            return InvalidArgument("\"" + v + "\" is not one of " + list);
          },
          [](const std::string& v) { return v; }};
}

FlagSet::Codec<std::chrono::nanoseconds> FlagSet::NanosCodec(std::chrono::nanoseconds min,
                                                             std::chrono::nanoseconds max) {
  return {
      "DURATION",
      [min, max](const std::string& v) -> Result<std::chrono::nanoseconds> {
        auto d = ParseGoDuration(v);
        if (!d.ok()) {
          return InvalidArgument(d.status().message() + " (a duration such as 500us, 2ms, 30s)");
        }
        if (*d < min || *d > max) {
          return InvalidArgument(v + " is outside [" + FormatGoDuration(min) + ", " +
                                 FormatGoDuration(max) + "]");
        }
        return *d;
      },
      [](const std::chrono::nanoseconds& d) { return FormatGoDuration(d); }};
}

void FlagSet::String(std::string name, std::string* dst, std::string help) {
  Add(std::move(name), dst, StringCodec(), std::move(help));
}
void FlagSet::Int(std::string name, int64_t* dst, int64_t min, int64_t max, std::string help) {
  Add(std::move(name), dst, IntCodec(min, max), std::move(help));
}
void FlagSet::Int(std::string name, int32_t* dst, int32_t min, int32_t max, std::string help) {
  Add(std::move(name), dst, Int32Codec(min, max), std::move(help));
}
void FlagSet::Bool(std::string name, bool* dst, std::string help) {
  Add(std::move(name), dst, BoolCodec(), std::move(help));
}
void FlagSet::String(std::string name, std::optional<std::string>* dst, std::string help) {
  Add(std::move(name), dst, StringCodec(), std::move(help));
}
void FlagSet::Int(std::string name, std::optional<int64_t>* dst, int64_t min, int64_t max,
                  std::string help) {
  Add(std::move(name), dst, IntCodec(min, max), std::move(help));
}
void FlagSet::Int(std::string name, std::optional<int32_t>* dst, int32_t min, int32_t max,
                  std::string help) {
  Add(std::move(name), dst, Int32Codec(min, max), std::move(help));
}
void FlagSet::Bool(std::string name, std::optional<bool>* dst, std::string help) {
  Add(std::move(name), dst, BoolCodec(), std::move(help));
}

void FlagSet::AddFlag(Flag flag) {
  // Two flags of one name are a programming error, not input.
  assert(Find(flag.name) == nullptr);
  flags_.push_back(std::move(flag));
}

const FlagSet::Flag* FlagSet::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Status FlagSet::Parse(const std::vector<std::string>& args) const {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" && Find("help") != nullptr) arg = "--help";
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return InvalidArgument("unexpected argument \"" + arg + "\" (flags start with --)");
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Flag* flag = Find(name);
    if (flag == nullptr && !value && name.rfind("no-", 0) == 0) {
      const Flag* negated = Find(name.substr(3));
      if (negated != nullptr && negated->is_bool) {
        RETURN_IF_ERROR(negated->set("false"));
        continue;
      }
    }
    if (flag == nullptr) return InvalidArgument("unknown flag --" + name);
    if (!value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return InvalidArgument("--" + name + " needs a value");
      }
    }
    if (Status s = flag->set(*value); !s.ok()) {
      return InvalidArgument("--" + name + ": " + s.message());
    }
  }
  return Status::Ok();
}

std::vector<std::string> FlagSet::ToArgs() const {
  std::vector<std::string> args;
  for (const Flag& f : flags_) {
    if (std::optional<std::string> v = f.get()) args.push_back("--" + f.name + "=" + *v);
  }
  return args;
}

std::string FlagSet::Usage() const {
  std::string out;
  for (const Flag& f : flags_) {
    std::string left = "  --" + f.name;
    if (!f.is_bool) left += "=" + f.value_name;
    if (left.size() < 34) {
      left.resize(34, ' ');
    } else {
      left += " ";
    }
    std::string help = f.help;
    if (std::optional<std::string> v = f.get(); v && !(f.is_bool && *v == "false") && !v->empty()) {
      help += " (default: " + *v + ")";
    }
    out += left + help + "\n";
  }
  return out;
}

}  // namespace sluice

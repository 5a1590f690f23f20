#include "json.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sam3spec {

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : text_(text) {}

  Json document() {
    Json value = parse_value();
    skip_space();
    if (pos_ != text_.size()) fail("trailing characters");
    return value;
  }

 private:
  const std::string& text_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(pos_));
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' ||
                                   text_[pos_] == '\t'))
      ++pos_;
  }
  char peek() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (text_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  unsigned hex4() {
    if (pos_ + 4 > text_.size()) fail("short \\u escape");
    unsigned code = std::stoul(text_.substr(pos_, 4), nullptr, 16);
    pos_ += 4;
    return code;
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated escape");
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xD800 && code < 0xDC00 && text_.compare(pos_, 2, "\\u") == 0) {
            pos_ += 2;
            unsigned low = hex4();
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, code);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  Json parse_value() {
    Json value;
    char c = peek();
    if (c == '{') {
      ++pos_;
      value.kind_ = Json::Kind::Object;
      if (peek() == '}') {
        ++pos_;
        return value;
      }
      while (true) {
        std::string key = parse_string();
        expect(':');
        value.object_[key] = parse_value();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect('}');
        return value;
      }
    }
    if (c == '[') {
      ++pos_;
      value.kind_ = Json::Kind::Array;
      if (peek() == ']') {
        ++pos_;
        return value;
      }
      while (true) {
        value.array_.push_back(parse_value());
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(']');
        return value;
      }
    }
    if (c == '"') {
      value.kind_ = Json::Kind::String;
      value.string_ = parse_string();
      return value;
    }
    if (literal("true") || literal("false")) {
      value.kind_ = Json::Kind::Bool;
      value.bool_ = text_[pos_ - 1] == 'e' && text_[pos_ - 2] == 'u';
      return value;
    }
    if (literal("null")) return value;
    if (literal("NaN") || literal("Infinity") || literal("-Infinity")) fail("non-finite number");
    const char* start = text_.c_str() + pos_;
    char* end = nullptr;
    value.number_ = std::strtod(start, &end);
    if (end == start) fail("unexpected character");
    pos_ += static_cast<size_t>(end - start);
    value.kind_ = Json::Kind::Number;
    return value;
  }
};

Json Json::parse(const std::string& text) { return JsonParser(text).document(); }

bool Json::has(const std::string& key) const { return is_object() && object_.count(key) > 0; }

const Json& Json::operator[](const std::string& key) const {
  if (!is_object()) throw std::runtime_error("JSON: not an object (looking up '" + key + "')");
  auto found = object_.find(key);
  if (found == object_.end()) throw std::runtime_error("JSON: missing key '" + key + "'");
  return found->second;
}

const Json& Json::operator[](size_t index) const {
  if (kind_ != Kind::Array || index >= array_.size()) throw std::runtime_error("JSON: index out of range");
  return array_[index];
}

size_t Json::size() const { return kind_ == Kind::Array ? array_.size() : object_.size(); }

double Json::number() const {
  if (kind_ != Kind::Number) throw std::runtime_error("JSON: not a number");
  return number_;
}

long long Json::integer() const { return static_cast<long long>(number()); }

bool Json::boolean() const {
  if (kind_ != Kind::Bool) throw std::runtime_error("JSON: not a boolean");
  return bool_;
}

const std::string& Json::str() const {
  if (kind_ != Kind::String) throw std::runtime_error("JSON: not a string");
  return string_;
}

const std::map<std::string, Json>& Json::items() const {
  if (!is_object()) throw std::runtime_error("JSON: not an object");
  return object_;
}

std::vector<double> Json::numbers() const {
  if (kind_ != Kind::Array) throw std::runtime_error("JSON: not an array");
  std::vector<double> out;
  for (const Json& item : array_) out.push_back(item.number());
  return out;
}

std::string json_escape(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace sam3spec

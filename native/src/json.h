// A minimal JSON reader for the two machine-written documents the runner reads: the .pte's
// `metadata_json` constant and a safetensors header. Hand-written (about 150 lines) because
// neither the ExecuTorch wheel nor the mobile SDKs ship a JSON library, and vendoring one
// (nlohmann: ~100 headers) for two flat documents costs more build time than it saves.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sam3spec {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  static Json parse(const std::string& text);  // throws std::runtime_error with the offset

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool has(const std::string& key) const;
  const Json& operator[](const std::string& key) const;  // throws when missing
  const Json& operator[](size_t index) const;
  size_t size() const;
  double number() const;
  long long integer() const;
  bool boolean() const;
  const std::string& str() const;
  const std::map<std::string, Json>& items() const;
  std::vector<double> numbers() const;  // an array of numbers

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Json> array_;
  std::map<std::string, Json> object_;
  friend class JsonParser;
};

std::string json_escape(const std::string& text);

}  // namespace sam3spec

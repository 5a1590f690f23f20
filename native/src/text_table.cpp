#include "text_table.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "json.h"

namespace sam3spec {

float half_to_float(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  uint32_t out;
  if (exponent == 0) {
    if (mantissa == 0) {
      out = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3FFu;
      out = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1F) {
    out = sign | 0x7F800000u | (mantissa << 13);
  } else {
    out = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &out, sizeof value);
  return value;
}

namespace {

struct Entry {
  std::string dtype;
  std::vector<long long> shape;
  uint64_t begin = 0, end = 0;
};

Entry entry(const Json& header, const std::string& name, const std::string& dtype, size_t rank,
            const std::string& path) {
  if (!header.has(name)) throw std::runtime_error(path + ": text table has no tensor '" + name + "'");
  const Json& item = header[name];
  Entry out;
  out.dtype = item["dtype"].str();
  for (double d : item["shape"].numbers()) out.shape.push_back(static_cast<long long>(d));
  out.begin = static_cast<uint64_t>(item["data_offsets"][0].integer());
  out.end = static_cast<uint64_t>(item["data_offsets"][1].integer());
  if (out.dtype != dtype || out.shape.size() != rank)
    throw std::runtime_error(path + ": tensor '" + name + "' should be " + dtype + " of rank " +
                             std::to_string(rank) + ", is " + out.dtype);
  return out;
}

}  // namespace

TextTable TextTable::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(path + ": cannot open text table");
  file.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(file.tellg());
  file.seekg(0);
  unsigned char length_bytes[8];
  if (file_size < 8 || !file.read(reinterpret_cast<char*>(length_bytes), 8))
    throw std::runtime_error(path + ": not a safetensors file (shorter than 8 bytes)");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];  // little-endian
  if (header_size == 0 || header_size > file_size - 8 || header_size > (100u << 20))
    throw std::runtime_error(path + ": not a safetensors file (bad header length)");
  std::string header_text(header_size, '\0');
  file.read(&header_text[0], static_cast<std::streamsize>(header_size));
  Json header;
  try {
    header = Json::parse(header_text);
  } catch (const std::exception& error) {
    throw std::runtime_error(path + ": safetensors header is not JSON (" + error.what() + ")");
  }
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;

  TextTable table;
  try {
    const Json& meta = header["__metadata__"];
    if (!meta.has("format") || meta["format"].str() != "sam3spec-text-table/1")
      throw std::runtime_error("not a sam3spec text table (metadata format)");
    table.preset_ = meta["preset"].str();
    Json phrases = Json::parse(meta["phrases"].str());
    for (size_t i = 0; i < phrases.size(); ++i) table.phrases_.push_back(phrases[i].str());
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(path + ": " + error.what());
  }
  Entry tokens = entry(header, "tokens", "F16", 3, path);
  Entry masks = entry(header, "masks", "BOOL", 2, path);
  const long long count = static_cast<long long>(table.phrases_.size());
  if (tokens.shape[0] != count || masks.shape[0] != count || masks.shape[1] != tokens.shape[1])
    throw std::runtime_error(path + ": tensor shapes do not match the phrase count");
  table.length_ = static_cast<int>(tokens.shape[1]);
  table.hidden_ = static_cast<int>(tokens.shape[2]);
  const uint64_t token_bytes = static_cast<uint64_t>(count) * table.length_ * table.hidden_ * 2;
  const uint64_t mask_bytes = static_cast<uint64_t>(count) * table.length_;
  if (tokens.end - tokens.begin != token_bytes || masks.end - masks.begin != mask_bytes ||
      tokens.end > data_size || masks.end > data_size)
    throw std::runtime_error(path + ": tensor byte ranges do not match their shapes (truncated file?)");
  table.tokens_.resize(token_bytes / 2);
  table.masks_.resize(mask_bytes);
  file.seekg(static_cast<std::streamoff>(data_start + tokens.begin));
  file.read(reinterpret_cast<char*>(table.tokens_.data()), static_cast<std::streamsize>(token_bytes));
  file.seekg(static_cast<std::streamoff>(data_start + masks.begin));
  file.read(reinterpret_cast<char*>(table.masks_.data()), static_cast<std::streamsize>(mask_bytes));
  if (!file) throw std::runtime_error(path + ": truncated tensor data");
  // safetensors stores little-endian; every target of this runner (x86-64, arm64) is too.
  return table;
}

bool TextTable::contains(const std::string& phrase) const {
  return std::find(phrases_.begin(), phrases_.end(), phrase) != phrases_.end();
}

TextEmbedding TextTable::get(const std::string& phrase) const {
  auto found = std::find(phrases_.begin(), phrases_.end(), phrase);
  if (found == phrases_.end())
    throw std::runtime_error("prompt '" + phrase + "' is not in the text table (" + std::to_string(phrases_.size()) +
                             " phrases); pass token ids for encode_text instead");
  const size_t index = static_cast<size_t>(found - phrases_.begin());
  const size_t row = static_cast<size_t>(length_) * hidden_;
  TextEmbedding out;
  out.tokens.resize(row);
  for (size_t i = 0; i < row; ++i) out.tokens[i] = half_to_float(tokens_[index * row + i]);
  out.mask.assign(masks_.begin() + static_cast<long>(index * length_),
                  masks_.begin() + static_cast<long>((index + 1) * length_));
  return out;
}

}  // namespace sam3spec

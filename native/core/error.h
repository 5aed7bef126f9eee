// The core's one exception type. Its code is stable and becomes the JS error's `code`; the
// addon catches every C++ exception at the boundary, so none reaches Node.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace fastgru {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

inline std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); i++) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace fastgru

#include "persona/io/stream_source.h"

#include <unistd.h>

namespace persona::io {

std::string default_consumer_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '?';
  return host;
}

}  // namespace persona::io

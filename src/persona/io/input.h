#pragma once
// Where Persona reads a named input from. A regular file is read where it is. Standard input
// ("-" or /dev/stdin), a pipe, a FIFO or a process substitution (<(zcat f.gz)) can be read only
// once, but Persona reads some inputs twice (outlier bounds first, a content hash before an
// ingest, the gzip magic bytes): such an input is copied once, as it streams, into an unlinked
// temporary file (hashed on the way), and every later open reads the copy. Devices (/dev/zero,
// /dev/urandom), directories and a terminal are refused with a clear error instead of hanging.
#include <cstdint>
#include <string>

namespace persona::io {

// The path to open for `path`: itself for a regular file, else the copy (made on first use, at
// most PERSONA_MAX_PIPE_BYTES bytes, default 8 GiB). Throws persona::Error naming `path`.
std::string readable_path(const std::string& path);

// The whole of a small input (a config, a FAQ, a text to analyse) as bytes: a file, or a pipe
// through its copy; devices refused; more than `max_bytes` is an error naming `what` (a config
// of /dev/zero used to be read until memory ran out).
std::string read_small_input(const std::string& path, const std::string& what, uint64_t max_bytes = 256u << 20);

// XXH3-128 of the input's bytes, as 32 hex digits (of the copy for a pipe, computed while copying).
std::string input_content_hash(const std::string& path);

}  // namespace persona::io

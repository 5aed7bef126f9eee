# Sourced by the install checks: make_shims DIR TOOL... writes a script per TOOL into DIR that says
# the tool is not installed and exits 127, so that with DIR first on PATH the machine looks like a
# slim container image without a toolchain.
make_shims() {
  local dir=$1 tool
  shift
  mkdir -p "$dir"
  for tool in "$@"; do
    printf '#!/bin/sh\necho "%s: not installed" >&2\nexit 127\n' "$tool" > "$dir/$tool"
    chmod +x "$dir/$tool"
  done
}

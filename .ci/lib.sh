# Shared by the CI scripts that talk to a running server; source it.

# Starts `./target/debug/poe serve ARGS… --listen 127.0.0.1:0` in the background, its output in
# PREFIX.out and PREFIX.err; sets `pid` and `addr` (host:port) once it listens.
# usage: start_serve PREFIX ARGS…
start_serve() {
  local prefix=$1
  shift
  ./target/debug/poe serve "$@" --listen 127.0.0.1:0 >"$prefix.out" 2>"$prefix.err" &
  pid=$!
  addr=
  for _ in $(seq 50); do
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$prefix.out" | head -n 1 || true)
    [ -n "$addr" ] && return 0
    sleep 0.2
  done
  echo "poe serve did not start"
  cat "$prefix.err"
  exit 1
}

#!/usr/bin/env bash
# Measures medic-agent's footprint: the stripped release binary's size, and the agent's
# resident memory (VmRSS) while it is blocked in a long poll against a local stand-in server.
#
#   ./bench_footprint.sh            builds with ./build.sh release first
#   SKIP_BUILD=1 ./bench_footprint.sh
#   BENCH_TLS=1 ./bench_footprint.sh      the stand-in speaks TLS (self-signed CA via openssl),
#                                         trusted through ca_file
#   BENCH_TLS=system ./bench_footprint.sh  the same without ca_file: the agent loads the
#                                         system's roots (SSL_CERT_FILE: the system bundle
#                                         plus the throwaway CA)
#   BENCH_METRICS=1 ./bench_footprint.sh  with the metrics endpoint on
#   BENCH_SMAPS=1 ./bench_footprint.sh    also resident memory by mapping
#   BENCH_ARCH=aarch64 ./bench_footprint.sh  the arm64 binary (build.sh release aarch64), run
#                                         under qemu-user through binfmt_misc: the resident
#                                         memory is then the emulator's, agent included
set -euo pipefail
cd "$(dirname "$0")"

case "${BENCH_ARCH:-x86_64}" in
  x86_64) BIN=$PWD/target/release/medic-agent ;;
  aarch64) BIN=$PWD/target/aarch64-unknown-linux-gnu/release/medic-agent ;;
  *) echo "BENCH_ARCH: x86_64 or aarch64" >&2; exit 2 ;;
esac
[ -n "${SKIP_BUILD:-}" ] || ./build.sh release "${BENCH_ARCH:-x86_64}" >/dev/null
size=$(stat -c %s "$BIN")
awk -v b="$size" 'BEGIN { printf "binary: %d bytes (%.2f MiB)\n", b, b / 1048576 }'

tmp=$(mktemp -d)
server_pid=
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

scheme=http
tls_args=()
ca_line=
agent_env=()
if [ -n "${BENCH_TLS:-}" ]; then
  # A throwaway CA and a server certificate for "localhost" signed by it.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tmp/ext"
  openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 1 -extfile "$tmp/ext" -out "$tmp/tls.crt" 2>/dev/null
  scheme=https
  tls_args=("$tmp/tls.crt" "$tmp/tls.key")
  if [ "$BENCH_TLS" = system ]; then
    cat /etc/ssl/certs/ca-certificates.crt "$tmp/ca.crt" >"$tmp/bundle.crt"
    agent_env+=("SSL_CERT_FILE=$tmp/bundle.crt")
    echo "trusted roots: $(grep -c 'BEGIN CERTIFICATE' "$tmp/bundle.crt") (system bundle + test CA)"
  else
    ca_line="ca_file = \"$tmp/ca.crt\""
  fi
fi

# Stand-in for the Medic server: answers registration, then holds every job poll open for
# longer than the measurement takes (and answers 204 if it ever gets there).
python3 -c '
import http.server, json, sys, time, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"agent_id": "bench", "poll_wait_seconds": 30}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        open(sys.argv[2], "a").write(self.path + "\n")
        time.sleep(25)
        self.send_response(204); self.end_headers()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
if len(sys.argv) > 3:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
' "$tmp/port" "$tmp/polls" ${tls_args[@]+"${tls_args[@]}"} &
server_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

mkdir -p "$tmp/scripts" "$tmp/work"
printf '#!/bin/sh\necho hello\n' >"$tmp/scripts/hello.sh"
printf 'bench-key\n' >"$tmp/key"
chmod 600 "$tmp/key"
cat >"$tmp/scripts.toml" <<TOML
[[script]]
name = "hello"
path = "hello.sh"
sha256 = "$("$BIN" hash "$tmp/scripts/hello.sh" | cut -d' ' -f1)"
TOML
cat >"$tmp/agent.toml" <<TOML
server_url = "$scheme://localhost:$port"
$ca_line
key_file = "key"
scripts_dir = "scripts"
work_dir = "work"
${BENCH_METRICS:+metrics_listen = \"127.0.0.1:0\"}
TOML

env ${agent_env[@]+"${agent_env[@]}"} "$BIN" run --config "$tmp/agent.toml" 2>"$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -s "$tmp/polls" ] && break; sleep 0.1; done
if [ ! -s "$tmp/polls" ]; then
  echo "the agent never polled; its log:" >&2
  cat "$tmp/agent.log" >&2
  exit 1
fi
sleep 2 # let it settle inside the blocked poll
grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|Threads)' "/proc/$agent_pid/status" | tr -s ' \t' ' '
if [ -n "${BENCH_SMAPS:-}" ]; then
  echo "resident KiB by mapping:"
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
       /^Rss:/ { rss[name] += $2 }
       END { for (n in rss) if (rss[n] > 0) printf "  %6d %s\n", rss[n], n }' \
    "/proc/$agent_pid/smaps" | sort -rn
fi
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent_pid/status")
awk -v k="$rss_kb" 'BEGIN { printf "idle RSS: %d KiB (%.2f MiB) while blocked in a long poll\n", k, k / 1024 }'

kill -TERM "$agent_pid"
rc=0
wait "$agent_pid" || rc=$?
agent_pid=
echo "agent exit code after SIGTERM: $rc"

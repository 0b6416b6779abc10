//! A small HTTP/1.1 client for the agent's requests to one server, over plain TCP or TLS
//! (rustls): one kept-alive connection, an overall deadline per request, no redirects, no
//! proxies, bodies up to 10 MB with `Content-Length`, chunked or close-delimited framing.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest response body accepted.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Largest status line plus headers accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Where requests go: parsed from a validated `http://` or `https://` server URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host name (lowercase ASCII, IDNA labels in punycode) or IP address, without brackets.
    pub host: String,
    pub port: u16,
    /// Value of the `Host` header: the host, with the port when it is not the default one.
    pub authority: String,
    /// Path of the server URL without its trailing `/` (`""` for the root).
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https:// or http://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // user:password@ is ignored: the agent authenticates with its API key.
        let hostport = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("has an unclosed [ in its host")?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| "has an invalid IPv6 address")?;
            (addr.to_ascii_lowercase(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (ascii_host(h)?, Some(p)),
                None => (ascii_host(hostport)?, None),
            }
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("has an invalid port")?,
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            tls,
            host,
            port,
            authority,
            prefix: encode_path(path.trim_end_matches('/')),
        })
    }
}

/// Lowercases a host name and turns labels with non-ASCII characters into their IDNA
/// (punycode) form, as a URL parser would.
fn ascii_host(host: &str) -> Result<String, String> {
    if host.is_ascii() {
        return Ok(host.to_ascii_lowercase());
    }
    let mut out = String::with_capacity(host.len() + 8);
    for (i, label) in host.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() {
            out.push_str(&label.to_ascii_lowercase());
        } else {
            let encoded = punycode(&label.to_lowercase()).ok_or("has an invalid host name")?;
            out.push_str("xn--");
            out.push_str(&encoded);
        }
    }
    Ok(out)
}

/// RFC 3492 punycode encoding of one label (without the `xn--` prefix).
fn punycode(label: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
        delta /= if first { 700 } else { 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + 38)
    }
    fn digit(d: u32) -> char {
        (if d < 26 {
            b'a' + d as u8
        } else {
            b'0' + (d - 26) as u8
        }) as char
    }
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut out: String = label.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (128u32, 0u32, 72u32, basic);
    while (handled as usize) < input.len() {
        let m = input.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n += 1;
    }
    Some(out)
}

/// Percent-encodes what may not appear raw in a request path (a URL parser's path set).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b <= b' ' || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}') {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct HttpClient {
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    /// The kept-alive connection between requests.
    idle: Mutex<Option<Conn>>,
}

impl HttpClient {
    /// `tls` is required for an `https://` target and ignored otherwise.
    pub fn new(
        target: Target,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
    ) -> HttpClient {
        HttpClient {
            target,
            tls,
            connect_timeout,
            idle: Mutex::new(None),
        }
    }

    /// Sends one request and reads the whole response within `timeout`. `path` is appended
    /// to the server URL's path; `headers` come after `Host`. Errors are transport errors
    /// (DNS, connect, TLS, timeout, broken or malformed response), as text.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response, String> {
        let deadline = Instant::now() + timeout;
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\n",
            self.target.prefix, self.target.authority
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some(b) = body {
            let _ = write!(head, "Content-Length: {}\r\n", b.len());
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body.unwrap_or_default());

        if let Some(mut conn) = self.take_idle() {
            conn.set_deadline(deadline);
            // Failing to send on a kept-alive connection means the server closed it before
            // this request: nothing got there, so a new connection may carry it. Failing to
            // read the answer is retried the same way only for a request safe to repeat.
            if conn.send(&message).is_ok() {
                match read_response(&mut conn, method) {
                    Ok(answer) => return Ok(self.done(conn, answer)),
                    Err(e) if body.is_none() && method == "GET" && closed(&e) => {}
                    Err(e) => return Err(io_message("reading response", &e)),
                }
            }
        }
        let mut conn = self.connect(deadline)?;
        conn.send(&message)
            .map_err(|e| io_message("sending request", &e))?;
        let answer =
            read_response(&mut conn, method).map_err(|e| io_message("reading response", &e))?;
        Ok(self.done(conn, answer))
    }

    /// Keeps the connection for the next request if the response allows it.
    fn done(&self, conn: Conn, (response, reusable): (Response, bool)) -> Response {
        if reusable {
            *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        }
        response
    }

    fn take_idle(&self) -> Option<Conn> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        // Anything readable now (data, EOF, an error) means the server is done with it.
        conn.is_quiet().then_some(conn)
    }

    fn connect(&self, deadline: Instant) -> Result<Conn, String> {
        let Target { host, port, .. } = &self.target;
        let addrs = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        let connect_deadline = deadline.min(Instant::now() + self.connect_timeout);
        let mut last_error = None;
        let mut tcp = None;
        for addr in addrs {
            let left = connect_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last_error = Some(io::Error::new(ErrorKind::TimedOut, "timed out"));
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            return Err(match last_error {
                Some(e) => io_message(&format!("cannot connect to {host} port {port}"), &e),
                None => format!("cannot resolve {host}: no address"),
            });
        };
        let _ = tcp.set_nodelay(true);
        let mut sock = Socket { tcp, deadline };
        let stream = if self.target.tls {
            let config = self.tls.clone().ok_or("TLS is not configured")?;
            let name = rustls::ServerName::try_from(host.as_str())
                .map_err(|e| format!("TLS: {host}: {e}"))?;
            let mut tls =
                rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
            tls.complete_io(&mut sock)
                .map_err(|e| io_message("TLS handshake failed", &e))?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(tls, sock)))
        } else {
            Stream::Plain(sock)
        };
        Ok(Conn {
            reader: BufReader::with_capacity(4096, stream),
        })
    }
}

/// A TCP socket whose every read and write must end by the request's deadline.
struct Socket {
    tcp: TcpStream,
    deadline: Instant,
}

impl Socket {
    fn time_left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "timed out"));
        }
        Ok(left)
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.time_left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.time_left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stream {
    Plain(Socket),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Socket>>),
}

impl Stream {
    fn socket(&mut self) -> &mut Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

struct Conn {
    reader: BufReader<Stream>,
}

impl Conn {
    fn set_deadline(&mut self, deadline: Instant) {
        self.reader.get_mut().socket().deadline = deadline;
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(message)?;
        stream.flush()
    }

    /// True when nothing is waiting to be read: no stray bytes and no close from the server.
    fn is_quiet(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        let tcp = match self.reader.get_ref() {
            Stream::Plain(s) => &s.tcp,
            Stream::Tls(t) => &t.sock.tcp,
        };
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let quiet = matches!(tcp.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        tcp.set_nonblocking(false).is_ok() && quiet
    }
}

/// The connection was closed or reset under the request (not a timeout, not garbage).
fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

fn io_message(what: &str, e: &io::Error) -> String {
    if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
        format!("{what}: timed out")
    } else {
        format!("{what}: {e}")
    }
}

/// `read_exact`'s end-of-stream error, told in this module's words.
fn cut_short(e: io::Error) -> io::Error {
    if e.kind() == ErrorKind::UnexpectedEof {
        io::Error::new(ErrorKind::UnexpectedEof, "connection closed mid-response")
    } else {
        e
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.to_string())
}

/// Reads a status line, headers and body. Returns the response and whether the connection
/// may carry another request.
fn read_response(conn: &mut Conn, method: &str) -> io::Result<(Response, bool)> {
    let r = &mut conn.reader;
    let mut head_bytes = 0;
    let (status, version_11) = loop {
        let line = read_line(r, &mut head_bytes)?;
        if line.is_empty() {
            // Blank lines before a status line are tolerated (RFC 9112, 2.2).
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| *s >= 100)
            .ok_or_else(|| invalid("malformed status line"))?;
        if !version.starts_with("HTTP/1.") {
            return Err(invalid("malformed status line"));
        }
        if (100..200).contains(&status) {
            // An interim response (100 Continue, 103 Early Hints): its headers, then on.
            while !read_line(r, &mut head_bytes)?.is_empty() {}
            continue;
        }
        break (status, version == "HTTP/1.1");
    };
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = version_11;
    loop {
        let line = read_line(r, &mut head_bytes)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("malformed header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| invalid("malformed Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("conflicting Content-Length"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                // Delimited by the end of the connection.
                keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !version_11 {
                    keep_alive = true;
                }
            }
        }
    }
    let mut body = Vec::new();
    if method == "HEAD" || status == 204 || status == 304 {
        // No body, whatever the headers say.
    } else if chunked {
        read_chunked(r, &mut body, &mut head_bytes)?;
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(invalid("response body over 10 MB"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(cut_short)?;
    } else {
        keep_alive = false;
        r.by_ref()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)?;
        if body.len() > MAX_BODY {
            return Err(invalid("response body over 10 MB"));
        }
    }
    let reusable = keep_alive && r.buffer().is_empty();
    Ok((Response { status, body }, reusable))
}

fn read_chunked(
    r: &mut BufReader<Stream>,
    body: &mut Vec<u8>,
    head_bytes: &mut usize,
) -> io::Result<()> {
    loop {
        let line = read_line(r, head_bytes)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("malformed chunk size"))?;
        if size == 0 {
            // Trailer fields, if any, up to the blank line.
            while !read_line(r, head_bytes)?.is_empty() {}
            return Ok(());
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("response body over 10 MB"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).map_err(cut_short)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(cut_short)?;
        if &crlf != b"\r\n" {
            return Err(invalid("malformed chunk"));
        }
    }
}

/// One line without its line ending; counts bytes against `MAX_HEAD`. An empty string at
/// the end of the stream too (callers tell a blank line from EOF where it matters).
fn read_line(r: &mut BufReader<Stream>, used: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let limit = MAX_HEAD.saturating_sub(*used) as u64;
    let n = r.by_ref().take(limit).read_until(b'\n', &mut line)?;
    *used += n;
    if n == 0 {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed mid-response",
        ));
    }
    if line.last() != Some(&b'\n') {
        return Err(if n as u64 >= limit {
            invalid("response header too large")
        } else {
            io::Error::new(ErrorKind::UnexpectedEof, "connection closed mid-response")
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("response header is not UTF-8"))
}

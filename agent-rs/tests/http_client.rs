//! The HTTP client against scripted servers: framing, kept-alive connections, stale
//! connections, timeouts, and TLS with a private CA.

mod common;

use common::TestDir;
use medic_agent::client::Client;
use medic_agent::http::{HttpClient, Target};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as the server saw it: the connection it came on (0, 1, ...), its head, body.
#[derive(Clone, Debug)]
struct Seen {
    conn: usize,
    head: String,
    body: String,
}

enum Answer {
    /// Send these bytes and wait for the next request on the connection.
    Send(&'static str),
    /// Send these bytes, then close the connection.
    SendAndClose(&'static str),
    /// Close the connection without answering.
    Close,
    /// Say nothing for this long, then close.
    Stall(Duration),
}

struct Scripted {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    /// `answer(n)` answers the n-th request the server receives (0-based, all connections).
    fn start(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = Arc::new(answer);
        thread::spawn(move || {
            for (conn, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let (log, answer) = (log.clone(), answer.clone());
                thread::spawn(move || serve(conn, stream, &log, &*answer));
            }
        });
        Scripted { port, seen }
    }

    fn client(&self, prefix: &str) -> HttpClient {
        let target = Target::parse(&format!("http://127.0.0.1:{}{prefix}", self.port)).unwrap();
        HttpClient::new(target, None, Duration::from_secs(2))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    conn: usize,
    stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    answer: &(dyn Fn(usize) -> Answer + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        let n = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                conn,
                head,
                body: String::from_utf8(body).unwrap(),
            });
            log.len() - 1
        };
        match answer(n) {
            Answer::Send(bytes) => out.write_all(bytes.as_bytes()).unwrap(),
            Answer::SendAndClose(bytes) => {
                let _ = out.write_all(bytes.as_bytes());
                return;
            }
            Answer::Close => return,
            Answer::Stall(d) => {
                thread::sleep(d);
                return;
            }
        }
    }
}

const OK_EMPTY: &str = "HTTP/1.1 204 No Content\r\n\r\n";
const T: Duration = Duration::from_secs(5);

fn get(client: &HttpClient, path: &str) -> Result<(u16, String), String> {
    client
        .request("GET", path, &[("Accept", "application/json")], None, T)
        .map(|r| (r.status, String::from_utf8(r.body).unwrap()))
}

#[test]
fn sends_the_request_line_and_headers() {
    let srv = Scripted::start(|_| Answer::Send(OK_EMPTY));
    let client = srv.client("/medic/");
    let r = client
        .request(
            "POST",
            "/v2/x?wait=3",
            &[("Authorization", "Bearer k")],
            Some(b"{\"a\":1}"),
            T,
        )
        .unwrap();
    assert_eq!(r.status, 204);
    let seen = srv.seen();
    let head = &seen[0].head;
    assert!(
        head.starts_with("POST /medic/v2/x?wait=3 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", srv.port)),
        "{head}"
    );
    assert!(head.contains("\r\nAuthorization: Bearer k\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 7\r\n"), "{head}");
    assert_eq!(seen[0].body, "{\"a\":1}");
}

#[test]
fn reads_length_chunked_and_close_delimited_bodies() {
    let srv = Scripted::start(|n| match n {
        0 => Answer::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        1 => Answer::Send(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             4;ext=1\r\nchun\r\n3\r\nked\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        2 => Answer::Send(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        _ => Answer::SendAndClose("HTTP/1.0 200 OK\r\n\r\nuntil the end"),
    });
    let client = srv.client("");
    assert_eq!(get(&client, "/a").unwrap(), (200, "hello".into()));
    assert_eq!(get(&client, "/b").unwrap(), (200, "chunked".into()));
    assert_eq!(get(&client, "/c").unwrap(), (200, "ok".into()));
    assert_eq!(get(&client, "/d").unwrap(), (200, "until the end".into()));
    let conns: Vec<usize> = srv.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 0, 0], "one kept-alive connection");
    // The close-delimited answer ended that connection.
    assert_eq!(get(&client, "/e").unwrap().1, "until the end");
    assert_eq!(srv.seen()[4].conn, 1);
}

#[test]
fn connection_close_is_honoured() {
    let srv = Scripted::start(|_| {
        Answer::Send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    });
    let client = srv.client("");
    get(&client, "/a").unwrap();
    get(&client, "/b").unwrap();
    let conns: Vec<usize> = srv.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 1]);
}

#[test]
fn a_connection_the_server_closed_is_replaced() {
    // The server closes each connection right after its answer, as after an idle timeout.
    let srv =
        Scripted::start(|_| Answer::SendAndClose("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let client = srv.client("");
    get(&client, "/a").unwrap();
    thread::sleep(Duration::from_millis(100));
    let r = client
        .request("POST", "/b", &[], Some(b"{}"), T)
        .expect("a new connection carries the request");
    assert_eq!(r.status, 200);
    let conns: Vec<usize> = srv.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 1]);
}

#[test]
fn a_get_lost_on_a_kept_alive_connection_is_sent_again_but_a_post_is_not() {
    // Requests 1 and 3 arrive on kept-alive connections, which the server then drops unanswered.
    let srv = Scripted::start(|n| match n {
        1 | 3 => Answer::Close,
        _ => Answer::Send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    });
    let client = srv.client("");
    get(&client, "/first").unwrap();
    assert_eq!(get(&client, "/poll").unwrap(), (200, "ok".into()));
    let seen = srv.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen[2].head.starts_with("GET /poll "));
    assert_eq!((seen[1].conn, seen[2].conn), (0, 1));

    let e = client
        .request("POST", "/report", &[], Some(b"{}"), T)
        .unwrap_err();
    assert!(e.contains("reading response"), "{e}");
    assert_eq!(srv.seen().len(), 4, "the POST was not repeated");
}

#[test]
fn the_whole_request_has_a_deadline() {
    let srv = Scripted::start(|_| Answer::Stall(Duration::from_secs(10)));
    let client = srv.client("");
    let started = Instant::now();
    let e = client
        .request("GET", "/slow", &[], None, Duration::from_millis(300))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn malformed_and_oversized_answers_are_errors() {
    let big: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(70_000)
        )
        .into_boxed_str(),
    );
    let srv = Scripted::start(move |n| match n {
        0 => Answer::SendAndClose("SSH-2.0-OpenSSH\r\n\r\n"),
        1 => Answer::SendAndClose(big),
        2 => Answer::SendAndClose("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"),
        _ => Answer::SendAndClose("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
    });
    let client = srv.client("");
    for expected in ["malformed status line", "too large", "over 10 MB", "closed"] {
        let e = get(&client, "/").unwrap_err();
        assert!(e.contains(expected), "{expected}: {e}");
    }
}

#[test]
fn unreachable_servers_are_transport_errors() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(
        &format!("http://127.0.0.1:{port}"),
        "k",
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    let e = client
        .request(
            "POST",
            "/v2/agent/register",
            Some(&serde_json::json!({})),
            T,
        )
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[test]
fn server_urls_are_parsed_like_a_url_parser_would() {
    let t = Target::parse("https://Medic.Example.com").unwrap();
    assert_eq!(
        (
            t.tls,
            t.host.as_str(),
            t.port,
            t.authority.as_str(),
            t.prefix.as_str()
        ),
        (true, "medic.example.com", 443, "medic.example.com", "")
    );
    let t = Target::parse("http://user:pw@[::1]:8080/medic/").unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.authority.as_str(),
            t.prefix.as_str()
        ),
        ("::1", 8080, "[::1]:8080", "/medic")
    );
    let t = Target::parse("http://localhost:80/a b/ä").unwrap();
    assert_eq!(
        (t.authority.as_str(), t.prefix.as_str()),
        ("localhost", "/a%20b/%C3%A4")
    );
    let t = Target::parse("https://bücher.example:8443").unwrap();
    assert_eq!(t.authority, "xn--bcher-kva.example:8443");
    let t = Target::parse("https://MÜNCHEN.de").unwrap();
    assert_eq!(t.host, "xn--mnchen-3ya.de");
    for bad in [
        "https://x:70000",
        "https://x:y",
        "https://[::1",
        "https://:80",
    ] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
    assert!(Client::new("https://x:0", "k", None, T).is_err());
}

// --- TLS -------------------------------------------------------------------------------------

/// A CA and a certificate for `localhost` signed by it, made with the openssl command.
fn make_certs(dir: &Path, tag: &str) -> Option<()> {
    let run = |args: &[&str]| -> bool {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let ca_key = format!("{tag}-ca.key");
    let ca = format!("{tag}-ca.crt");
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]) && run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &format!("{tag}.key"),
        "-out",
        &format!("{tag}.csr"),
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ok = ok
        && run(&[
            "x509",
            "-req",
            "-in",
            &format!("{tag}.csr"),
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            &format!("{tag}.crt"),
        ]);
    ok.then_some(())
}

/// A TLS server (rustls) answering every request on a connection with 200 and a JSON body.
fn tls_server(dir: &Path, tag: &str) -> u16 {
    let read_pem = |name: &str| BufReader::new(std::fs::File::open(dir.join(name)).unwrap());
    let certs = rustls_pemfile::certs(&mut read_pem(&format!("{tag}.crt")))
        .unwrap()
        .into_iter()
        .map(rustls::Certificate)
        .collect();
    let key = rustls_pemfile::pkcs8_private_keys(&mut read_pem(&format!("{tag}.key")))
        .unwrap()
        .remove(0);
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_safe_defaults()
            .with_no_client_auth()
            .with_single_cert(certs, rustls::PrivateKey(key))
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let config = config.clone();
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while tls.read(&mut byte).unwrap_or(0) == 1 {
                    buf.push(byte[0]);
                    if buf.ends_with(b"\r\n\r\n") {
                        buf.clear();
                        let body = "{\"agent_id\":\"tls\"}";
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

#[test]
fn tls_with_a_private_ca() {
    let dir = TestDir::new("http-tls");
    if make_certs(&dir.path, "server").is_none() || make_certs(&dir.path, "other").is_none() {
        eprintln!("openssl command not available: TLS test skipped");
        return;
    }
    let port = tls_server(&dir.path, "server");
    let url = format!("https://localhost:{port}");
    let client = Client::new(&url, "k", Some(&dir.join("server-ca.crt")), T).unwrap();
    for _ in 0..2 {
        let (status, body) = client.request("GET", "/v2/agent/jobs", None, T).unwrap();
        assert_eq!((status, body["agent_id"].as_str()), (200, Some("tls")));
    }

    // Signed by a CA the client does not trust.
    let client = Client::new(&url, "k", Some(&dir.join("other-ca.crt")), T).unwrap();
    let e = client
        .request("GET", "/v2/agent/jobs", None, T)
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");

    // The system's roots do not know the test CA either...
    let client = Client::new(&url, "k", None, T).unwrap();
    let e = client
        .request("GET", "/v2/agent/jobs", None, T)
        .unwrap_err();
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");

    // ... unless the system's bundle holds it (SSL_CERT_FILE stands in for the bundle; no
    // other test of this binary reads the system roots).
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(dir.join("other-ca.crt")).unwrap());
    bundle.extend(std::fs::read(dir.join("server-ca.crt")).unwrap());
    std::fs::write(dir.join("bundle.crt"), bundle).unwrap();
    std::env::set_var("SSL_CERT_FILE", dir.join("bundle.crt"));
    let client = Client::new(&url, "k", None, T);
    std::env::remove_var("SSL_CERT_FILE");
    let (status, _) = client
        .unwrap()
        .request("GET", "/v2/agent/jobs", None, T)
        .unwrap();
    assert_eq!(status, 200);
}

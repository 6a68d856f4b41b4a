//! A loopback HTTP front that answers chosen requests with a chosen status,
//! and forwards the rest to the real service behind it, for fault tests that
//! need more than a TCP cut: a registry answering `429 Too Many Requests`
//! with `Retry-After`, or `503`, a given number of times before it recovers.
//!
//! Point the tool under test at [`HttpFault::addr`] instead of the service.
//! Each [`Fault`] answers the first `times` requests whose method and path
//! match it; every request is recorded (method, path, when, and whether a
//! fault answered it), so a test can assert that a client really retried and
//! how long it waited. Forwarded requests go to the target one connection
//! each, with `Connection: close`, and the target's answer goes back as is;
//! the `Host` header is kept, so URLs the target builds from it (upload
//! `Location`s) point back at the front.
//!
//! A fault can also echo the request's head (its request line and every
//! header, `Authorization` included) in its error body, as some proxies and
//! misconfigured registries do, and can be limited to requests that carry
//! credentials: the way to prove a tool never prints what it sent.
//!
//! HTTP/1.1 only, request bodies by `Content-Length` or passed through as
//! they come; good enough for a registry client, not a general proxy.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Requests to answer with a canned response instead of forwarding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The method to match (`GET`, `HEAD`, …), or `None` for any.
    pub method: Option<String>,
    /// A substring the request path (query included) must contain.
    pub path_contains: String,
    /// How many matching requests to answer; later ones are forwarded.
    pub times: usize,
    /// The status code answered, e.g. 429.
    pub status: u16,
    /// Extra response headers, e.g. `("Retry-After", "1")`.
    pub headers: Vec<(String, String)>,
    /// Whether the error body quotes the request's head, headers included.
    pub echoes_request: bool,
    /// Whether only requests with an `Authorization` header match.
    pub needs_authorization: bool,
    /// A body answered instead of the registry error document (a hostile
    /// registry's answer, e.g. a tag list with forged names).
    pub body: Option<String>,
}

impl Fault {
    /// Answers the first `times` requests of any method whose path contains
    /// `path_contains` with `status` and no extra header.
    pub fn new(path_contains: &str, times: usize, status: u16) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.to_owned(),
            times,
            status,
            headers: Vec::new(),
            echoes_request: false,
            needs_authorization: false,
            body: None,
        }
    }

    /// Answers with `body` (as `application/json`) instead of the registry
    /// error document, as a hostile or broken registry would.
    pub fn body(mut self, body: &str) -> Fault {
        self.body = Some(body.to_owned());
        self
    }

    /// The error body quotes the request line and every request header
    /// (`Authorization` too), as a careless proxy does.
    pub fn echoing_request(mut self) -> Fault {
        self.echoes_request = true;
        self
    }

    /// Only requests carrying an `Authorization` header match (the others,
    /// such as the first, unauthenticated one of a challenge, are forwarded).
    pub fn authorized_only(mut self) -> Fault {
        self.needs_authorization = true;
        self
    }

    /// Only requests with this method match.
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_owned());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn matches(&self, head: &Head) -> bool {
        self.method.as_deref().is_none_or(|m| m == head.method)
            && head.path.contains(&self.path_contains)
            && (!self.needs_authorization || head.header("authorization").is_some())
    }
}

/// One request the front received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method, e.g. `HEAD`.
    pub method: String,
    /// The path with its query, e.g. `/v2/app/manifests/1`.
    pub path: String,
    /// When its head had been read.
    pub at: Instant,
    /// The status a fault answered with, or `None` when it was forwarded.
    pub faulted: Option<u16>,
}

/// State shared between the handle and the threads.
#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    /// Each fault with how many times it has answered.
    faults: Mutex<Vec<(Fault, usize)>>,
    seen: Mutex<Vec<Seen>>,
    stopping: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running front; dropping it stops accepting new connections.
#[derive(Debug)]
pub struct HttpFault {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl HttpFault {
    /// Starts a front on a free `127.0.0.1` port forwarding to `target`,
    /// answering requests that match `faults` (checked in order) itself.
    pub fn start(target: SocketAddr, faults: Vec<Fault>) -> HttpFault {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind an HTTP front port on `127.0.0.1`: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the HTTP front's address: {e}"));
        let shared = Arc::new(Shared {
            target,
            faults: Mutex::new(faults.into_iter().map(|f| (f, 0)).collect()),
            seen: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || serve(client, &shared));
                }
            })
        };
        HttpFault {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// The requests received so far whose method is `method` and whose path
    /// contains `path_contains`.
    pub fn seen_matching(&self, method: &str, path_contains: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.contains(path_contains))
            .collect()
    }

    /// How many times each fault has answered so far, in the order given.
    pub fn fault_counts(&self) -> Vec<usize> {
        lock(&self.shared.faults).iter().map(|(_, n)| *n).collect()
    }
}

impl Drop for HttpFault {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocked accept so the thread sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A request head as read: the request line's parts and the header lines.
struct Head {
    method: String,
    path: String,
    lines: Vec<String>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.lines.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Serves the requests of one client connection until it closes, or one is
/// forwarded (the target's answer ends the connection).
fn serve(client: TcpStream, shared: &Shared) {
    let Ok(read_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut client = client;
    while let Some(head) = read_head(&mut reader) {
        let fault = {
            let mut faults = lock(&shared.faults);
            faults
                .iter_mut()
                .find(|(fault, used)| *used < fault.times && fault.matches(&head))
                .map(|(fault, used)| {
                    *used += 1;
                    fault.clone()
                })
        };
        lock(&shared.seen).push(Seen {
            method: head.method.clone(),
            path: head.path.clone(),
            at: Instant::now(),
            faulted: fault.as_ref().map(|f| f.status),
        });
        match fault {
            Some(fault) => {
                // Read the body so the client is not cut off mid-send.
                let length = head
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).is_err() {
                    return;
                }
                let mut answer = format!("HTTP/1.1 {} Fault\r\n", fault.status);
                for (name, value) in &fault.headers {
                    answer.push_str(&format!("{name}: {value}\r\n"));
                }
                answer.push_str("Content-Type: application/json\r\n");
                let code = if fault.status == 429 {
                    "TOOMANYREQUESTS"
                } else {
                    "UNAVAILABLE"
                };
                let mut message = format!("fault injected by the test bed ({})", fault.status);
                if fault.echoes_request {
                    message.push_str("; your request was: ");
                    message.push_str(&head.lines.join("\n"));
                }
                let body = fault.body.clone().unwrap_or_else(|| {
                    format!(
                        r#"{{"errors":[{{"code":"{code}","message":{}}}]}}"#,
                        json_string(&message)
                    )
                });
                answer.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
                if client.write_all(answer.as_bytes()).is_err() {
                    return;
                }
                if head
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
            }
            None => {
                forward(&head, reader, client, shared.target);
                return;
            }
        }
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads one request head (`None` at EOF or on a malformed one).
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines.first()?.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    Some(Head {
        method,
        path,
        lines,
    })
}

/// Sends `head` to `target` with `Connection: close`, then pipes the rest
/// of the client's bytes (the body) up and the target's answer back, and
/// closes both when the target is done.
fn forward(
    head: &Head,
    mut reader: BufReader<TcpStream>,
    mut client: TcpStream,
    target: SocketAddr,
) {
    let Ok(mut upstream) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let mut request = String::new();
    for line in &head.lines {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(request.as_bytes()).is_err() {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    // Bytes already buffered past the head belong to the body.
    let buffered = reader.buffer().to_vec();
    if upstream.write_all(&buffered).is_err() {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    reader.consume(buffered.len());
    let Ok(mut upstream_up) = upstream.try_clone() else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let up = std::thread::spawn(move || {
        let mut client_read = reader.into_inner();
        let _ = std::io::copy(&mut client_read, &mut upstream_up);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    // The answer is complete: end the connection, which also ends the
    // upward copy (its read from the client fails).
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny HTTP server answering `200 ok:<path>` to every request.
    fn origin() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let head = read_head(&mut reader).unwrap();
                    let length = head
                        .header("content-length")
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    let mut body = Vec::new();
                    (&mut reader).take(length).read_to_end(&mut body).unwrap();
                    let text = format!("ok:{}:{}", head.path, String::from_utf8_lossy(&body));
                    let mut stream = stream;
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .unwrap();
                });
            }
        });
        addr
    }

    /// Sends one request with `body` on a new connection; returns the whole answer.
    fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn faults_answer_the_first_matching_requests_then_forward() {
        let front = HttpFault::start(
            origin(),
            vec![
                Fault::new("/v2/a/", 2, 429)
                    .method("PUT")
                    .header("Retry-After", "1"),
            ],
        );
        let first = request(front.addr(), "PUT", "/v2/a/manifests/1", "xyz");
        assert!(first.starts_with("HTTP/1.1 429 "), "{first}");
        assert!(first.contains("Retry-After: 1\r\n"), "{first}");
        // Another method or path is not matched, and is forwarded with its body.
        let other = request(front.addr(), "GET", "/v2/a/manifests/1", "");
        assert!(other.ends_with("ok:/v2/a/manifests/1:"), "{other}");
        let second = request(front.addr(), "PUT", "/v2/a/manifests/1", "xyz");
        assert!(second.starts_with("HTTP/1.1 429 "), "{second}");
        let third = request(front.addr(), "PUT", "/v2/a/manifests/1", "xyz");
        assert!(third.ends_with("ok:/v2/a/manifests/1:xyz"), "{third}");
        let seen: Vec<(String, Option<u16>)> = front
            .seen()
            .into_iter()
            .map(|s| (s.method, s.faulted))
            .collect();
        assert_eq!(
            seen,
            [
                ("PUT".to_owned(), Some(429)),
                ("GET".to_owned(), None),
                ("PUT".to_owned(), Some(429)),
                ("PUT".to_owned(), None),
            ]
        );
        assert_eq!(front.fault_counts(), [2]);
        assert_eq!(front.seen_matching("PUT", "/v2/a/").len(), 3);
    }
}

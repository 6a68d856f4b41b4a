//! A small programmable HTTP(S) server on a free loopback port, and a way
//! to run the real `ready-wait` binary against it.
//!
//! Each connection gets one answer chosen by the test's closure from the
//! request's number (0, 1, 2, …): a status, a body, headers, or a hang that
//! lasts until the client goes away. The server stops when it drops.

// Each test file uses part of this module; a failed `unwrap` here is a broken
// test set-up, which should fail the test loudly.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use slipway_testbed::cmd::{Cmd, Outcome};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub is_hanging: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            headers: Vec::new(),
            is_hanging: false,
        }
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Accepts the request and never answers.
    pub fn hang() -> Reply {
        Reply {
            is_hanging: true,
            ..Reply::status(200)
        }
    }
}

type Behaviour = dyn Fn(u32, &str) -> Reply + Send + Sync;

/// A running test server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<AtomicU32>,
    /// Each request's head (request line and headers), in arrival order.
    heads: Arc<Mutex<Vec<String>>>,
    is_stopping: Arc<AtomicBool>,
}

impl Server {
    /// Serves plain HTTP on a free 127.0.0.1 port.
    pub fn start(behaviour: impl Fn(u32, &str) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Server::serve(listener, None, Arc::new(behaviour))
    }

    /// Serves on an already bound listener.
    pub fn start_on(
        listener: TcpListener,
        behaviour: impl Fn(u32, &str) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::serve(listener, None, Arc::new(behaviour))
    }

    /// Serves HTTPS with `tls` on a free 127.0.0.1 port.
    pub fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        behaviour: impl Fn(u32, &str) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Server::serve(listener, Some(tls), Arc::new(behaviour))
    }

    fn serve(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        behaviour: Arc<Behaviour>,
    ) -> Server {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU32::new(0));
        let is_stopping = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, stopping, seen) = (
            Arc::clone(&requests),
            Arc::clone(&is_stopping),
            Arc::clone(&heads),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (behaviour, count, tls, seen) = (
                    Arc::clone(&behaviour),
                    Arc::clone(&count),
                    tls.clone(),
                    Arc::clone(&seen),
                );
                thread::spawn(move || {
                    let _ = match tls {
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            handle(
                                rustls::StreamOwned::new(connection, stream),
                                &*behaviour,
                                &count,
                                &seen,
                            )
                        }
                        None => handle(stream, &*behaviour, &count, &seen),
                    };
                });
            }
        });
        Server {
            addr,
            requests,
            heads,
            is_stopping,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The heads (request line and headers, CRLF-separated) of the
    /// requests received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.is_stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle<S: Read + Write>(
    stream: S,
    behaviour: &Behaviour,
    count: &AtomicU32,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    if request_line.is_empty() {
        return Ok(());
    }
    let mut head = request_line.clone();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(head);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let index = count.fetch_add(1, Ordering::SeqCst);
    let reply = behaviour(index, &path);
    if reply.is_hanging {
        // Hold the connection until the client closes it.
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        return Ok(());
    }
    let mut head = format!(
        "HTTP/1.1 {} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let stream = reader.get_mut();
    stream.write_all(head.as_bytes())?;
    stream.write_all(reply.body.as_bytes())?;
    stream.flush()
}

/// A self-signed certificate for `localhost` and 127.0.0.1: the server's
/// TLS config and the certificate's PEM.
pub fn self_signed() -> (Arc<rustls::ServerConfig>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    (Arc::new(config), certified.cert.pem())
}

/// Runs `ready-wait` with `args` to its end (within the builder's deadline).
pub fn ready_wait(args: &[&str]) -> Outcome {
    command(args).run()
}

/// A `ready-wait` command with `args`, through the test bed's builder: free
/// of the caller's environment (no CI, `SLIPWAY_*` or proxy variable), with
/// `NO_COLOR` set.
pub fn command(args: &[&str]) -> Cmd {
    let mut command = Cmd::new(env!("CARGO_BIN_EXE_ready-wait"));
    command.args(args).env("NO_COLOR", "1");
    command
}

/// The JSON report of a run.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A temp dir holding a slipway.toml with an env `staging` whose
/// `ready_url` and `ready_timeout` are given.
pub fn slipway_toml(url: &str, timeout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[envs.staging]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nready_url = \"{url}\"\nready_timeout = \"{timeout}\"\n"
    );
    fs_err::write(dir.path().join("slipway.toml"), text).unwrap();
    dir
}

//! A loopback TCP proxy that can refuse, delay, slow down or cut
//! connections, for fault tests.
//!
//! Point the tool under test at [`TcpProxy::addr`] instead of the service,
//! then change [`Mode`] or call [`TcpProxy::cut_all`] to make the network
//! misbehave at a chosen moment. [`Mode::Throttle`] makes a transfer last
//! long enough for a test to act in its middle (e.g. stop the service once
//! [`TcpProxy::forwarded`] passes a mark). [`TcpProxy::silence_all`] turns
//! the open connections into black holes (bytes vanish, nothing is closed
//! or reset), as a network that goes silent. Each connection is forwarded
//! by two threads, one per direction.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What the proxy does with connections accepted from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways (the default).
    Pass,
    /// Accept and close at once, before reading anything: the client sees
    /// its connection closed, as with a service that crashes on accept.
    Refuse,
    /// Wait this long before connecting to the target, then forward.
    Delay(Duration),
    /// Forward until this many bytes, counted in both directions together,
    /// have passed on a connection, then close both sides of it.
    CutAfter(u64),
    /// Forward at about this many bytes per second in each direction of
    /// each connection.
    Throttle(u64),
}

/// The open connections, by id: the client's stream and the target's.
type Connections = HashMap<u64, (TcpStream, TcpStream)>;

/// State shared between the proxy handle and its threads.
#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    mode: Mutex<Mode>,
    connections: Mutex<Connections>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    /// Bytes forwarded so far, all connections and both directions.
    forwarded: AtomicU64,
    /// Connections whose bytes are dropped from now on, by id.
    silenced: Mutex<HashSet<u64>>,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy; dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts a proxy on a free `127.0.0.1` port forwarding to `target`, in [`Mode::Pass`].
    pub fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind a proxy port on `127.0.0.1`: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the proxy's address: {e}"));
        let shared = Arc::new(Shared {
            target,
            mode: Mutex::new(Mode::Pass),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            silenced: Mutex::new(HashSet::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        TcpProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded so far, over all connections and both directions.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Changes what happens to connections accepted from now on; open ones
    /// keep the mode they started with.
    pub fn set_mode(&self, mode: Mode) {
        *self
            .shared
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Makes every open connection silent from now on, both ways: what
    /// either side sends is read and dropped, nothing is closed or reset,
    /// as when a network (or a stopped server) goes quiet. New connections
    /// are forwarded as the mode says.
    pub fn silence_all(&self) {
        let ids: Vec<u64> = self.shared.connections().keys().copied().collect();
        self.shared
            .silenced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(ids);
    }

    /// Closes every open connection now, both sides, as a network failure
    /// would; the proxy keeps accepting new ones.
    pub fn cut_all(&self) {
        for (_, (client, upstream)) in self.shared.connections().drain() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocked accept so the thread sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut_all();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let mode = shared.mode();
        if mode == Mode::Refuse {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let shared = Arc::clone(shared);
        std::thread::spawn(move || connect(client, &shared, mode));
    }
}

/// Connects `client` to the target and forwards both ways under `mode`.
fn connect(client: TcpStream, shared: &Arc<Shared>, mode: Mode) {
    if let Mode::Delay(delay) = mode {
        std::thread::sleep(delay);
    }
    let Ok(upstream) = TcpStream::connect(shared.target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let limit = match mode {
        Mode::CutAfter(bytes) => Some(bytes),
        Mode::Pass | Mode::Refuse | Mode::Delay(_) | Mode::Throttle(_) => None,
    };
    let rate = match mode {
        Mode::Throttle(bytes_per_second) => Some(bytes_per_second.max(1)),
        Mode::Pass | Mode::Refuse | Mode::Delay(_) | Mode::CutAfter(_) => None,
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let streams = (|| {
        let registered = (client.try_clone()?, upstream.try_clone()?);
        let back = (upstream.try_clone()?, client.try_clone()?);
        Ok::<_, std::io::Error>((registered, back))
    })();
    let Ok((registered, (upstream_read, client_write))) = streams else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    shared.connections().insert(id, registered);
    let pump = Arc::new(Pump {
        shared: Arc::clone(shared),
        id,
        limit,
        rate,
        forwarded: AtomicU64::new(0),
    });
    let back = {
        let pump = Arc::clone(&pump);
        std::thread::spawn(move || pump.forward(upstream_read, client_write))
    };
    pump.forward(client, upstream);
    let _ = back.join();
    shared.connections().remove(&id);
}

/// One connection's forwarding state, shared by its two directions.
#[derive(Debug)]
struct Pump {
    shared: Arc<Shared>,
    id: u64,
    limit: Option<u64>,
    /// Bytes per second per direction, under [`Mode::Throttle`].
    rate: Option<u64>,
    forwarded: AtomicU64,
}

impl Pump {
    /// Copies `from` to `to` until EOF, an error, or the byte limit.
    fn forward(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        // Under a throttle, reads are small so the rate is smooth.
        let chunk = match self.rate {
            Some(rate) => usize::try_from(rate / 20)
                .unwrap_or(buf.len())
                .clamp(1, buf.len()),
            None => buf.len(),
        };
        let started = std::time::Instant::now();
        let mut total: u64 = 0;
        loop {
            let n = match from.read(&mut buf[..chunk]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let is_silenced = self
                .shared
                .silenced
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&self.id);
            if is_silenced {
                continue;
            }
            let allowed = match self.limit {
                None => n,
                Some(limit) => {
                    let before = self.forwarded.fetch_add(n as u64, Ordering::SeqCst);
                    usize::try_from(limit.saturating_sub(before)).map_or(n, |left| left.min(n))
                }
            };
            if to.write_all(&buf[..allowed]).is_err() {
                break;
            }
            self.shared
                .forwarded
                .fetch_add(allowed as u64, Ordering::SeqCst);
            total += allowed as u64;
            if let Some(rate) = self.rate {
                // Sleep until the bytes sent so far are due at `rate`.
                let due = Duration::from_secs_f64(total as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
            if allowed < n
                || self
                    .limit
                    .is_some_and(|l| self.forwarded.load(Ordering::SeqCst) >= l)
            {
                self.cut();
                return;
            }
        }
        // Pass the end of this direction on; the other keeps going.
        let _ = to.shutdown(Shutdown::Write);
    }

    /// Closes both sides of this connection.
    fn cut(&self) {
        if let Some((client, upstream)) = self.shared.connections().remove(&self.id) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; serves until the test process ends.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut write = stream.try_clone().unwrap();
                    let _ = std::io::copy(&mut &stream, &mut write);
                    let _ = write.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    /// Sends `sent` through a proxy in `mode`, half-closes, returns all it reads back.
    #[track_caller]
    fn check(mode: Mode, sent: &[u8], expected: &[u8]) {
        let proxy = TcpProxy::start(echo_server());
        proxy.set_mode(mode);
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Writing to a refused connection may fail; what comes back is what counts.
        let _ = stream.write_all(sent);
        let _ = stream.shutdown(Shutdown::Write);
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        assert_eq!(received, expected, "{mode:?}");
    }

    #[test]
    fn modes_forward_refuse_delay_and_cut() {
        check(Mode::Pass, b"hello", b"hello");
        check(Mode::Refuse, b"hello", b"");
        check(Mode::Delay(Duration::from_millis(10)), b"hello", b"hello");
        // 4 bytes out, then the 4 echoed back would pass 6: 2 of them arrive.
        check(Mode::CutAfter(6), b"abcd", b"ab");
        check(Mode::CutAfter(0), b"abcd", b"");
        check(Mode::Throttle(1000), b"hello", b"hello");
    }

    #[test]
    fn a_silenced_connection_drops_bytes_without_closing() {
        let proxy = TcpProxy::start(echo_server());
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        stream.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        proxy.silence_all();
        stream.write_all(b"more").unwrap();
        let error = stream.read(&mut buf).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{error:?}"
        );
    }

    #[test]
    fn throttle_slows_a_transfer_and_forwarded_counts_it() {
        let proxy = TcpProxy::start(echo_server());
        proxy.set_mode(Mode::Throttle(20_000));
        let mut stream = TcpStream::connect(proxy.addr()).unwrap();
        let started = std::time::Instant::now();
        let sent = vec![7u8; 10_000];
        stream.write_all(&sent).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        assert_eq!(received, sent);
        // 10 kB each way at 20 kB/s takes at least half a second (a lower
        // bound only: a slow machine may take longer).
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(proxy.forwarded(), 20_000);
    }
}

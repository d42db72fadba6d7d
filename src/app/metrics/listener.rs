//! `probe top --metrics-listen ADDR`: a small HTTP/1.1 responder for
//! Prometheus, on `std::net` and poll(2), in one thread.
//!
//! Only `GET` and `HEAD` of `/metrics` (404 for other paths, 405 with
//! `Allow: GET, HEAD` for other methods, 400 for what is not HTTP, 431
//! for a request head over `MAX_HEAD` bytes); every response ends the
//! connection (`Connection: close`). Clients cannot hold it: sockets are
//! non-blocking and polled together, each has `IDLE_LIMIT` to send its
//! request and read the answer, and past `MAX_CONNECTIONS` the oldest is
//! dropped for the newest. A scrape sends the text rendered at the last
//! interval: no work per scrape but copying it out.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Published;

/// The largest request head read (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// Connections held at once; past it the oldest goes.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take from accept to the end of its answer.
pub const IDLE_LIMIT: Duration = Duration::from_secs(10);
/// How often the thread looks at the stop flag when nothing happens.
const TICK: Duration = Duration::from_millis(100);

/// The running listener; stopped (and its thread joined) on `stop`.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The address it is bound to (the port the kernel chose for port 0).
    pub addr: SocketAddr,
}

impl Listener {
    /// Binds `addr` and serves `published` from a thread of its own.
    pub fn start(addr: SocketAddr, published: Published) -> io::Result<Listener> {
        let socket = TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(socket, published, flag))?;
        Ok(Listener {
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// Stops serving and waits for the thread (at most a tick).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client.
struct Conn {
    stream: TcpStream,
    since: Instant,
    head: Vec<u8>,
    /// The answer, once the head is complete, and how much of it is sent.
    answer: Option<(Vec<u8>, Arc<Vec<u8>>, usize)>,
}

fn serve(socket: TcpListener, published: Published, stop: Arc<AtomicBool>) {
    let mut conns: VecDeque<Conn> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = Vec::with_capacity(conns.len() + 1);
        fds.push(libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for c in &conns {
            let events = if c.answer.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        // SAFETY: fds is a live array of fds.len() pollfds.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                TICK.as_millis() as i32,
            )
        };
        if n < 0 {
            continue;
        }
        // Every connection first (the accepted ones are added after).
        let mut keep = VecDeque::with_capacity(conns.len());
        for (c, pfd) in conns.drain(..).zip(&fds[1..]) {
            if let Some(c) = step(c, pfd.revents, &published) {
                keep.push_back(c);
            }
        }
        conns = keep;
        if fds[0].revents & libc::POLLIN != 0 {
            accept_all(&socket, &mut conns);
        }
    }
}

/// Takes every pending connection, dropping the oldest past the limit.
fn accept_all(socket: &TcpListener, conns: &mut VecDeque<Conn>) {
    loop {
        match socket.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if conns.len() >= MAX_CONNECTIONS {
                    conns.pop_front();
                }
                conns.push_back(Conn {
                    stream,
                    since: Instant::now(),
                    head: Vec::new(),
                    answer: None,
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            // EMFILE and kin: try again at the next poll.
            Err(_) => return,
        }
    }
}

/// Advances one connection; None when it is done (or dropped).
fn step(mut c: Conn, revents: i16, published: &Published) -> Option<Conn> {
    if c.since.elapsed() > IDLE_LIMIT {
        return None;
    }
    if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return None;
    }
    if c.answer.is_none() && revents & (libc::POLLIN | libc::POLLHUP) != 0 {
        let mut buf = [0u8; 2048];
        loop {
            match c.stream.read(&mut buf) {
                // The client closed before a whole head: nothing to answer.
                Ok(0) => return None,
                Ok(n) => {
                    c.head.extend_from_slice(&buf[..n]);
                    if let Some(answer) = respond(&c.head, published) {
                        c.answer = Some(answer);
                        break;
                    }
                    if c.head.len() > MAX_HEAD {
                        c.answer = Some((
                            status(431, "Request Header Fields Too Large", &[]),
                            Arc::new(Vec::new()),
                            0,
                        ));
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }
    if let Some((head, body, sent)) = &mut c.answer {
        let total = head.len() + body.len();
        while *sent < total {
            let chunk = if *sent < head.len() {
                &head[*sent..]
            } else {
                &body[*sent - head.len()..]
            };
            match c.stream.write(chunk) {
                Ok(0) => return None,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(c),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        return None;
    }
    Some(c)
}

/// A status line and headers, with `extra` header lines.
fn status(code: u16, reason: &str, extra: &[&str]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for line in extra {
        h.push_str(line);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// The answer to a complete request head, or None while it is not
/// complete.
fn respond(head: &[u8], published: &Published) -> Option<(Vec<u8>, Arc<Vec<u8>>, usize)> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| {
        // Bare newlines, as some clients send.
        head.windows(2).position(|w| w == b"\n\n")
    })?;
    if end + 4 > MAX_HEAD {
        return Some((
            status(431, "Request Header Fields Too Large", &[]),
            Arc::new(Vec::new()),
            0,
        ));
    }
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(end);
    let line = String::from_utf8_lossy(&head[..line_end]);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let empty = Arc::new(Vec::new());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return Some((status(400, "Bad Request", &[]), empty, 0));
    };
    if !version.starts_with("HTTP/1.") {
        return Some((status(400, "Bad Request", &[]), empty, 0));
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Some((status(404, "Not Found", &[]), empty, 0));
    }
    if method != "GET" && method != "HEAD" {
        return Some((
            status(405, "Method Not Allowed", &["Allow: GET, HEAD"]),
            empty,
            0,
        ));
    }
    let body = published.get();
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    let body = if method == "HEAD" { empty } else { body };
    Some((header, body, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(req: &[u8]) -> String {
        let p = Published::default();
        p.set(b"probe_x 1\n".to_vec());
        match respond(req, &p) {
            Some((h, b, _)) => {
                String::from_utf8_lossy(&h).into_owned() + &String::from_utf8_lossy(&b)
            }
            None => "incomplete".into(),
        }
    }

    #[test]
    fn only_get_and_head_of_metrics() {
        let ok = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(ok.contains("Content-Length: 10\r\n") && ok.ends_with("probe_x 1\n"));
        let head = answer(b"HEAD /metrics HTTP/1.0\r\n\r\n");
        assert!(head.contains("Content-Length: 10\r\n") && head.ends_with("\r\n\r\n"));
        assert!(answer(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let post = answer(b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"));
        assert!(answer(b"hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost:"), "incomplete");
    }
}

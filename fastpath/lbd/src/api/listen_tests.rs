//! The bounded listener: the idle timer (reset by reads and by writes, with tokio's paused
//! clock), the connection cap, accept errors that back off and never end the stream, the
//! rate-limited log, and the connect info tonic sees.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_stream::StreamExt;

use super::*;

fn conn(io: DuplexStream, idle: u64, stats: &Arc<ListenerStats>) -> Conn<DuplexStream> {
    Conn::new(io, Some(Duration::from_secs(idle)), Slot::take(stats, 1).unwrap())
}

#[tokio::test(start_paused = true)]
async fn reads_reset_the_idle_timer() {
    let stats = ListenerStats::new("t");
    let (mut client, server) = tokio::io::duplex(64);
    let mut c = conn(server, 10, &stats);
    let t0 = Instant::now();
    let mut b = [0u8; 4];
    // A byte at 6 s: the connection is then good until 16 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    client.write_all(b"x").await.unwrap();
    assert_eq!(c.read(&mut b).await.unwrap(), 1);
    assert!(tokio::time::timeout(Duration::from_secs(9), c.read(&mut b)).await.is_err(), "still open at 15 s");
    let e = c.read(&mut b).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t0.elapsed().as_secs(), 16, "{:?}", t0.elapsed());
    assert_eq!(e.to_string(), "t: no traffic for 10 s");
    assert_eq!(stats.idle_closed.load(Ordering::Relaxed), 1);
    // It stays failed, and counts once.
    assert_eq!(c.read(&mut b).await.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(stats.idle_closed.load(Ordering::Relaxed), 1);
    drop(c);
    assert_eq!(stats.open.load(Ordering::Relaxed), 0, "the slot is given back");
}

#[tokio::test(start_paused = true)]
async fn writes_reset_the_idle_timer_and_a_peer_that_stops_reading_times_out() {
    let stats = ListenerStats::new("t");
    let (mut client, server) = tokio::io::duplex(8);
    let mut c = conn(server, 10, &stats);
    let t0 = Instant::now();
    let reader = tokio::spawn(async move {
        // Reads 8 bytes every 6 s, 4 times, then stops reading.
        let mut b = [0u8; 8];
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            client.read_exact(&mut b).await.unwrap();
        }
        client
    });
    // 32 bytes go through an 8-byte pipe in 18 s, longer than the idle timeout but never 10 s
    // without progress.
    c.write_all(&[0xa5; 32]).await.unwrap();
    assert_eq!(t0.elapsed().as_secs(), 18);
    let _client = reader.await.unwrap();
    // The next 16 bytes: 8 fit (at 24 s), then nobody reads. The write fails 10 s later.
    let e = c.write_all(&[0xa5; 16]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t0.elapsed().as_secs(), 34, "{:?}", t0.elapsed());
    assert_eq!(stats.idle_closed.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn without_an_idle_timeout_a_connection_waits_forever() {
    let stats = ListenerStats::new("t");
    let (_client, server) = tokio::io::duplex(8);
    let mut c = Conn::new(server, None, Slot::take(&stats, 1).unwrap());
    let mut b = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_secs(365 * 24 * 3600), c.read(&mut b)).await.is_err());
}

/// Accept results played back in order, then nothing.
struct Script(VecDeque<io::Result<DuplexStream>>);

impl Accept for Script {
    type Io = DuplexStream;
    fn poll_accept(&mut self, _: &mut Context<'_>) -> Poll<io::Result<DuplexStream>> {
        self.0.pop_front().map_or(Poll::Pending, Poll::Ready)
    }
}

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_and_never_end_the_stream() {
    let emfile = || Err(io::Error::from_raw_os_error(24));
    let aborted = || Err(io::Error::from(io::ErrorKind::ConnectionAborted));
    let mut script: VecDeque<_> = (0..25).map(|_| emfile()).collect();
    script.push_back(aborted());
    script.push_back(Ok(tokio::io::duplex(8).0));
    let stats = ListenerStats::new("t");
    let mut incoming = Incoming::new(Script(script), Limits { max_connections: 4, idle_timeout: None }, Arc::clone(&stats));
    let t0 = Instant::now();
    let c = incoming.next().await.expect("the stream goes on").unwrap();
    // 100 ms after each of the 25 EMFILEs; none after the aborted connection.
    assert_eq!(t0.elapsed(), ACCEPT_BACKOFF * 25);
    assert_eq!(stats.accept_errors.load(Ordering::Relaxed), 25);
    assert_eq!((stats.accepted.load(Ordering::Relaxed), stats.open.load(Ordering::Relaxed)), (1, 1));
    drop(c);
    // Nothing more to accept: pending, not the end.
    assert!(tokio::time::timeout(Duration::from_secs(3600), incoming.next()).await.is_err());
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stats = ListenerStats::new("t");
    let mut incoming = Incoming::new(l, Limits { max_connections: 2, idle_timeout: Some(Duration::from_secs(60)) }, Arc::clone(&stats));
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    let a = incoming.next().await.unwrap().unwrap();
    let b = incoming.next().await.unwrap().unwrap();
    // tonic's remote_addr() works: the inner stream's connect info.
    assert_eq!(a.connect_info().remote_addr(), Some(clients[0].local_addr().unwrap()));
    let c = tokio::spawn(async move {
        let next = incoming.next().await;
        (incoming, next)
    });
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), clients[2].read(&mut buf)).await.expect("closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert_eq!(stats.rejected.load(Ordering::Relaxed), 1);
    assert_eq!(stats.open.load(Ordering::Relaxed), 2);
    // A freed slot takes the next connection.
    drop(b);
    let _d = TcpStream::connect(addr).await.unwrap();
    let (_incoming, d) = tokio::time::timeout(Duration::from_secs(10), c).await.unwrap().unwrap();
    assert!(matches!(d, Some(Ok(_))));
    assert_eq!((stats.open.load(Ordering::Relaxed), stats.accepted.load(Ordering::Relaxed)), (2, 3));
    drop(a);
}

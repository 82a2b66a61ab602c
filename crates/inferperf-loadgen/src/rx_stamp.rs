//! Kernel receive timestamps for response bytes. A chunk's arrival time is when the kernel
//! received the packet that completed it (`SO_TIMESTAMPNS`), not when the client's task got to
//! read the socket, so a busy or descheduled client (a VM stall, a burst of 256 streams on two
//! cores) no longer shows up as inter-token latency. Each read records the kernel time of the
//! last segment it consumed; the streaming loop stamps the frames it decodes with it.
//!
//! Linux only: elsewhere (or when the socket option is refused) reads are plain and the client
//! falls back to the time it read the data, and says so in the record's conventions.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Read, ReadBufCursor, Write};
#[cfg(not(target_os = "linux"))]
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Process-wide origin of the arrival cells: fixed when the first stream is created, before any
/// of its data can arrive.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The arrival time of the newest bytes read on one connection (shared between the connection
/// and the request that reads its body). The lowest bit says whether the kernel stamped it
/// (the kernel turns stamping on asynchronously, so a connection's first packets may lack it).
#[derive(Clone, Debug, Default)]
pub struct Arrival(Arc<AtomicU64>);

impl Arrival {
    /// When the last read's data arrived (kernel time, else the time of the read), or `None`
    /// before the first read.
    pub fn last(&self) -> Option<Instant> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            v => Some(base() + Duration::from_nanos(v >> 1)),
        }
    }

    /// Whether the last read carried a kernel timestamp.
    pub fn kernel_stamped(&self) -> bool {
        self.0.load(Ordering::Relaxed) & 1 == 1
    }

    pub(crate) fn set(&self, at: Instant, kernel: bool) {
        let ns = at.saturating_duration_since(base()).as_nanos() as u64;
        self.0
            .store((ns << 1) | kernel as u64 | 2, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads record kernel receive timestamps into an [`Arrival`].
///
/// On Linux the socket is driven through `AsyncFd` so a read can drop the socket's readiness
/// when it drained it (a short read), as tokio's own `TcpStream` does: without that every
/// chunk costs a second `recvmsg` that only returns `EAGAIN`, a quarter of the client's
/// syscalls at 10 ms per token.
pub struct RxStampedStream {
    #[cfg(target_os = "linux")]
    io: tokio::io::unix::AsyncFd<std::net::TcpStream>,
    #[cfg(not(target_os = "linux"))]
    io: TokioIo<TcpStream>,
    arrival: Arrival,
    stamping: bool,
}

impl RxStampedStream {
    /// Wrap `stream`, asking the kernel for receive timestamps. `stamping()` says whether it
    /// agreed.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        base();
        let stamping = enable_timestamps(&stream);
        #[cfg(target_os = "linux")]
        // SAFETY: a std `TcpStream` owns its descriptor: it stays open and the same for as long
        // as the `AsyncFd` owns the stream.
        let io = unsafe { tokio::io::unix::AsyncFd::register(stream.into_std()?) }?;
        #[cfg(not(target_os = "linux"))]
        let io = TokioIo::new(stream);
        Ok(Self {
            io,
            arrival: Arrival::default(),
            stamping,
        })
    }

    /// The cell the reads update.
    pub fn arrival(&self) -> Arrival {
        self.arrival.clone()
    }

    /// Whether reads carry kernel timestamps.
    pub fn stamping(&self) -> bool {
        self.stamping
    }
}

#[cfg(target_os = "linux")]
fn enable_timestamps(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn enable_timestamps(_stream: &TcpStream) -> bool {
    false
}

/// `recvmsg` into `buf`; returns the byte count and the kernel receive time (CLOCK_REALTIME)
/// of the last segment consumed, if the kernel attached one.
#[cfg(target_os = "linux")]
fn recv_stamped(
    fd: std::os::fd::RawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, Option<libc::timespec>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // Room for one timespec control message, 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: fd is an open socket; msg points at valid buffers for the call's duration.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc CMSG macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                stamp = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(c) as *const libc::timespec
                ));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

/// The `Instant` of a CLOCK_REALTIME kernel timestamp: now minus how long ago it was, so wall
/// clock steps between runs do not matter (only the few microseconds since the packet).
#[cfg(target_os = "linux")]
fn instant_of(stamp: libc::timespec) -> Option<Instant> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mono_now = Instant::now();
    // SAFETY: clock_gettime with a valid out pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) } != 0 {
        return None;
    }
    let ns = |t: libc::timespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    let age = ns(now) - ns(stamp);
    // A stamp from the future or older than a second is not trusted (clock stepped).
    if !(0..1_000_000_000).contains(&age) {
        return None;
    }
    mono_now.checked_sub(Duration::from_nanos(age as u64))
}

#[cfg(target_os = "linux")]
impl Read for RxStampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        use std::os::fd::AsRawFd;
        let this = self.get_mut();
        loop {
            let mut guard = match this.io.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(guard)) => guard,
            };
            // SAFETY: recv_stamped only writes initialized bytes into the first `n`
            // positions, and `advance(n)` marks exactly those as filled.
            let slots = unsafe { buf.as_mut() };
            let room = slots.len();
            match guard.try_io(|fd| recv_stamped(fd.get_ref().as_raw_fd(), slots)) {
                Ok(Ok((n, stamp))) => {
                    if n > 0 {
                        match stamp.and_then(instant_of) {
                            Some(at) => this.arrival.set(at, true),
                            None => this.arrival.set(Instant::now(), false),
                        }
                        if n < room {
                            // The read drained the socket: wait for the next edge instead
                            // of asking again for an EAGAIN.
                            guard.clear_ready();
                        }
                    }
                    // SAFETY: the kernel wrote n bytes into the buffer.
                    unsafe { buf.advance(n) };
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl RxStampedStream {
    /// Run the non-blocking `write` once the socket is writable, retrying on `WouldBlock`.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = match self.io.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(guard)) => guard,
            };
            if let Ok(r) = guard.try_io(|fd| write(fd.get_ref())) {
                return Poll::Ready(r);
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl Write for RxStampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use std::io::Write as _;
        self.poll_write_with(cx, |mut stream| stream.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(std::net::Shutdown::Write))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use std::io::Write as _;
        self.poll_write_with(cx, |mut stream| stream.write_vectored(bufs))
    }
}

#[cfg(not(target_os = "linux"))]
impl Read for RxStampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = Instant::now();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if r.is_ready() {
            this.arrival.set(before, false);
        }
        r
    }
}

#[cfg(not(target_os = "linux"))]
impl Write for RxStampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;

    /// Bytes that sat in the socket before the reader got to them are stamped with their
    /// arrival, not with the read.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_stamp_is_the_kernel_arrival_not_the_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let mut stream = RxStampedStream::new(client).expect("wrap");
        assert!(stream.stamping());
        let arrival = stream.arrival();
        // The kernel switches stamping on asynchronously: exchange until a read is stamped.
        let mut buf = [0u8; 64];
        for round in 0.. {
            assert!(round < 10_000, "the kernel never stamped a read");
            server.write_all(b"data: hello\n\n").await.expect("write");
            // Wait until the bytes are queued in the socket (peek reads without consuming);
            // the read comes after this.
            let mut peek = [0u8; 1];
            loop {
                let mut ready = stream.io.readable().await.expect("readable");
                if let Ok(r) = ready.try_io(|fd| fd.get_ref().peek(&mut peek)) {
                    r.expect("peek");
                    break;
                }
            }
            let queued_at = Instant::now();
            let n = {
                let mut io = TokioIo::new(&mut stream);
                tokio::io::AsyncReadExt::read(&mut io, &mut buf)
                    .await
                    .expect("read")
            };
            assert_eq!(&buf[..n], b"data: hello\n\n");
            if arrival.kernel_stamped() {
                let at = arrival.last().expect("stamped");
                assert!(
                    at <= queued_at,
                    "arrival {at:?} is not before the bytes were seen queued ({queued_at:?})"
                );
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

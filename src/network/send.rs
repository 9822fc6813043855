//! Writing a response: its encoded bytes, with the file regions it carries (a Fetch response's
//! records) inserted where they belong. On a plaintext connection a region goes from the page
//! cache to the socket with `sendfile(2)`, never entering user space (Kafka's
//! `FileRecords.writeTo` / `transferTo`); on TLS it has to be read and encrypted, one copy.
//! A region not wholly in the page cache is read on the blocking pool instead, as on TLS, so
//! that no runtime thread waits for the disk (Kafka sends cold data from its network threads).

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::log::FileRegion;

/// The write half of a connection.
pub(super) trait Outbound: AsyncWrite + Unpin + Send + 'static {
    /// The socket itself, when bytes may be written to it directly (plaintext).
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl Outbound for tokio::net::tcp::OwnedWriteHalf {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: tokio::io::AsyncRead + AsyncWrite + Unpin + Send + 'static> Outbound
    for tokio::io::WriteHalf<S>
{
}

/// Writes `bytes` with each region inserted at its position (positions ascending).
pub(super) async fn write_response<W: Outbound>(
    writer: &mut W,
    bytes: &[u8],
    regions: &[(usize, FileRegion)],
) -> io::Result<()> {
    let mut at = 0;
    for (pos, region) in regions {
        let head = bytes
            .get(at..*pos)
            .ok_or_else(|| io::Error::other("a file region outside its response"))?;
        match writer.socket() {
            // Pages not in the page cache would make `sendfile` wait for the disk on this
            // runtime thread: such a region is read on the blocking pool and written from
            // memory, as on TLS (one copy, next to a disk read).
            Some(socket) if region.is_resident() => {
                // The bytes before the region are held back (MSG_MORE) to leave in one
                // segment with the region's first bytes, as `nodelay` would send them alone.
                send_more(socket, head).await?;
                send_file(socket, region).await?;
            }
            _ => {
                writer.write_all(head).await?;
                let data = read_region(region.clone()).await?;
                writer.write_all(&data).await?;
            }
        }
        at = *pos;
    }
    writer.write_all(bytes.get(at..).unwrap_or_default()).await
}

/// The region's bytes, read on the blocking pool (the file may not be in the page cache).
async fn read_region(region: FileRegion) -> io::Result<bytes::Bytes> {
    tokio::task::spawn_blocking(move || region.read())
        .await
        .map_err(io::Error::other)?
}

/// Writes all of `buf` to the socket, telling the kernel more follows at once.
async fn send_more(socket: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            // SAFETY: the pointer and length are those of a live slice; the descriptor is the
            // socket's, open for as long as `socket` is borrowed.
            let n = unsafe {
                libc::send(
                    socket.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends the region from its file with `sendfile(2)`. A file that ends before the region does
/// (a follower's truncation since the fetch located it) fails the send, and so the connection,
/// as Kafka's `FileRecords.writeTo` does: the frame's size is already promised.
async fn send_file(socket: &TcpStream, region: &FileRegion) -> io::Result<()> {
    let end = region.position.saturating_add(region.len as u64);
    let mut offset = i64::try_from(region.position).map_err(io::Error::other)?;
    while (offset as u64) < end {
        socket.writable().await?;
        let left = (end - offset as u64) as usize;
        let sent = socket.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open (the region holds its file, `socket` is
            // borrowed) and `offset` is a valid pointer for the call.
            let n = unsafe {
                libc::sendfile(
                    socket.as_raw_fd(),
                    region.file.as_raw_fd(),
                    &mut offset,
                    left,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the fetched region (truncated since it was read)",
                ));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

//! Large files leave by `sendfile(2)`: from the page cache to the socket,
//! never through drop's memory. hyper frames each response and counts its
//! bytes, and it writes only through the connection it was given; so a
//! file's body is made of placeholder frames, slices of one zeroed buffer
//! that nothing else uses, each recorded with the part of the file it
//! stands for, and the connection's [`FileSocket`] sends that part of the
//! file where hyper hands it the placeholder. The placeholder bytes
//! themselves are never sent: a placeholder without its part of the file
//! ends the connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The most of a file one placeholder frame stands for.
const FRAME_MAX: usize = 8 * 1024 * 1024;
/// The most one `sendfile` call sends. It reads the file on the runtime's
/// thread, so a file not yet in the page cache holds the thread for the
/// disk reads of this much at most (nginx's `sendfile_max_chunk` default).
const SENDFILE_MAX: usize = 2 * 1024 * 1024;

/// The placeholder bytes: zeroed memory, whose pages the system maps only
/// once read, and nothing reads them. Made at run time, so the binary does
/// not carry them.
static PLACEHOLDER: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(vec![0; FRAME_MAX]));

/// Where `buf` starts within [`PLACEHOLDER`], if it is a slice of it.
fn placeholder_at(buf: &[u8]) -> Option<usize> {
    let at = (buf.as_ptr() as usize).checked_sub(PLACEHOLDER.as_ptr() as usize)?;
    (!buf.is_empty() && at + buf.len() <= FRAME_MAX).then_some(at)
}

/// The part of a file one placeholder frame stands for.
#[derive(Debug)]
struct Span {
    file: Arc<File>,
    offset: u64,
    len: usize,
}

/// The spans of one connection's file bodies, in the order hyper takes
/// their frames, which is the order it writes them.
#[derive(Debug, Default)]
pub(super) struct Spans(Mutex<VecDeque<Span>>);

impl Spans {
    fn push(&self, span: Span) {
        self.0.lock().expect("spans lock").push_back(span);
    }

    /// The file and offset of the placeholder bytes `at..at + len` of the
    /// oldest frame not yet sent; they must reach the frame's end.
    fn front(&self, at: usize, len: usize) -> Option<(Arc<File>, u64)> {
        let spans = self.0.lock().expect("spans lock");
        let span = spans.front().filter(|span| at + len == span.len)?;
        Some((span.file.clone(), span.offset + at as u64))
    }

    fn pop(&self) {
        self.0.lock().expect("spans lock").pop_front();
    }
}

/// The body of a file answer: `left` bytes from `next`, as placeholder
/// frames of its connection's [`FileSocket`].
#[derive(Debug)]
pub(super) struct FileBody {
    file: Arc<File>,
    next: u64,
    left: u64,
    spans: Arc<Spans>,
}

impl FileBody {
    /// `len` bytes of `file` from `start`, sent on the connection that
    /// shares `spans`.
    pub(super) fn new(file: File, start: u64, len: u64, spans: Arc<Spans>) -> Self {
        FileBody {
            file: Arc::new(file),
            next: start,
            left: len,
            spans,
        }
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        if body.left == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(body.left).map_or(FRAME_MAX, |left| left.min(FRAME_MAX));
        body.spans.push(Span {
            file: body.file.clone(),
            offset: body.next,
            len,
        });
        body.next += len as u64;
        body.left -= len as u64;
        let placeholder = PLACEHOLDER.slice(..len);
        Poll::Ready(Some(Ok(Frame::data(placeholder))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// A connection's socket: the bytes hyper writes go out as they are, and
/// placeholder frames as the parts of files they stand for.
pub(super) struct FileSocket {
    stream: TcpStream,
    spans: Arc<Spans>,
}

impl FileSocket {
    /// Wraps `stream`; its file bodies record their spans in `spans`.
    pub(super) fn new(stream: TcpStream, spans: Arc<Spans>) -> Self {
        FileSocket { stream, spans }
    }

    /// Sends the file's bytes in place of the placeholder bytes
    /// `at..at + len`, as many as the socket takes now.
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        at: usize,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let Some((file, offset)) = self.spans.front(at, len) else {
            return Poll::Ready(Err(io::Error::other(
                "placeholder bytes without the file they stand for",
            )));
        };
        let count = len.min(SENDFILE_MAX);
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                send_part(&self.stream, &file, offset, count)
            });
            match sent {
                // Cut short since it was opened: the response ends here,
                // shorter than its Content-Length, rather than with bytes
                // that are not the file's.
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file was cut short while it was sent",
                    )));
                }
                Ok(sent) => {
                    if sent == len {
                        self.spans.pop();
                    }
                    return Poll::Ready(Ok(sent));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Sends up to `count` bytes of `file` from `offset` on `stream` as far as
/// it takes them without blocking; `Ok(0)` when the file ends before.
#[cfg(target_os = "linux")]
fn send_part(stream: &TcpStream, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    let mut at = offset;
    match rustix::fs::sendfile(stream, file, Some(&mut at), count) {
        // A file system that cannot splice its files: copy them.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            copy_part(stream, file, offset, count)
        }
        sent => Ok(sent?),
    }
}

#[cfg(not(target_os = "linux"))]
fn send_part(stream: &TcpStream, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    copy_part(stream, file, offset, count)
}

/// [`send_part`] without `sendfile(2)`: a read, then as much of it as the
/// socket takes (the rest is read again next time).
fn copy_part(stream: &TcpStream, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; count.min(256 * 1024)];
    match file.read_at(&mut buf, offset)? {
        0 => Ok(0),
        read => stream.try_write(&buf[..read]),
    }
}

impl AsyncRead for FileSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FileSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match placeholder_at(buf) {
            Some(at) => self.poll_send_file(cx, at, buf.len()),
            None => Pin::new(&mut self.stream).poll_write(cx, buf),
        }
    }

    /// The plain buffers up to the first placeholder go out in one write;
    /// a placeholder first goes out on its own, by `sendfile`.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs = match bufs.iter().position(|buf| !buf.is_empty()) {
            Some(first) => &bufs[first..],
            None => &[],
        };
        if let Some(first) = bufs.first()
            && let Some(at) = placeholder_at(first)
        {
            return self.poll_send_file(cx, at, first.len());
        }
        let plain = bufs
            .iter()
            .position(|buf| placeholder_at(buf).is_some())
            .unwrap_or(bufs.len());
        Pin::new(&mut self.stream).poll_write_vectored(cx, &bufs[..plain])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback connection: the server's end wrapped, the client's end.
    async fn connection(spans: Arc<Spans>) -> (FileSocket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (FileSocket::new(accepted.unwrap().0, spans), client.unwrap())
    }

    fn file_of(content: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        file
    }

    /// Plain bytes, then a file body's frames, written as hyper writes
    /// them: the peer reads the plain bytes and then the file's, never a
    /// placeholder's zeros.
    #[tokio::test]
    async fn placeholders_go_out_as_the_file() {
        let content: Vec<u8> = (0..3 * FRAME_MAX / 2)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        let spans = Arc::new(Spans::default());
        let (mut socket, mut client) = connection(spans.clone()).await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut body = FileBody::new(file_of(&content), 5, content.len() as u64 - 5, spans);
        socket.write_all(b"head\r\n").await.unwrap();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.iter().all(|&b| b == 0), "a placeholder");
            socket.write_all(&data).await.unwrap();
        }
        socket.shutdown().await.unwrap();
        drop(socket);
        let got = reader.await.unwrap();
        assert_eq!(&got[..6], b"head\r\n");
        assert!(got[6..] == content[5..], "the file's bytes, in order");
    }

    /// A file cut short under its body ends the write with an error, after
    /// only bytes of the file.
    #[tokio::test]
    async fn a_file_cut_short_ends_the_write() {
        let content = vec![7u8; 1 << 20];
        let spans = Arc::new(Spans::default());
        let (mut socket, mut client) = connection(spans.clone()).await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        });
        let file = file_of(&content);
        let cut = file.try_clone().unwrap();
        let mut body = FileBody::new(file, 0, content.len() as u64, spans);
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        cut.set_len(4096).unwrap();
        let err = socket.write_all(&data).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(socket);
        assert_eq!(reader.await.unwrap(), vec![7u8; 4096]);
    }

    /// Where a file system cannot splice, its files are copied: the same
    /// bytes, and `0` past the end.
    #[tokio::test]
    async fn copying_sends_the_same_bytes() {
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let (socket, mut client) = connection(Arc::default()).await;
        let file = file_of(&content);
        let mut sent = 0;
        while sent < content.len() - 10 {
            socket.stream.writable().await.unwrap();
            let left = content.len() - 10 - sent;
            match copy_part(&socket.stream, &file, 10 + sent as u64, left) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let past = copy_part(&socket.stream, &file, content.len() as u64, 10);
        assert_eq!(past.unwrap(), 0);
        drop(socket);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(got == content[10..]);
    }

    /// Placeholder bytes no body recorded are never sent.
    #[tokio::test]
    async fn a_placeholder_without_its_file_is_refused() {
        let (mut socket, _client) = connection(Arc::default()).await;
        let err = socket.write_all(&PLACEHOLDER[3..13]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(placeholder_at(&[0u8; 10]), None, "zeros of another buffer");
    }
}

//! hyper answers a request it cannot parse (400, 414, 431) by itself,
//! before drop sees a request, and its answer carries none of the headers
//! drop promises on every answer. [`ParseErrorHeaders`] wraps the
//! connection and adds them to that one kind of write: a lone, complete,
//! empty response head of one of those statuses without drop's headers.
//! hyper writes it only when no response of drop's is being written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What drop adds to hyper's own answers: the headers of every answer.
const ADDED: &[u8] = b"referrer-policy: no-referrer\r\nx-content-type-options: nosniff\r\nx-robots-tag: noindex, nofollow\r\ncache-control: no-store\r\n";
/// The largest head hyper writes for these answers (a status line, a
/// `content-length: 0` and a `date`).
const MAX_HEAD: usize = 256;

/// A connection whose hyper-made parse-error answers get drop's headers.
pub struct ParseErrorHeaders<S> {
    inner: S,
    /// The rewritten head being written, how much of it is out, and the
    /// length of the original to report once it all is.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> ParseErrorHeaders<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        ParseErrorHeaders {
            inner,
            pending: None,
        }
    }
}

/// `head` with drop's headers after its status line, when it is hyper's
/// own parse-error answer.
fn rewritten(head: &[u8]) -> Option<Vec<u8>> {
    let is_error_status = [&b"HTTP/1.1 400 "[..], b"HTTP/1.1 414 ", b"HTTP/1.1 431 "]
        .iter()
        .any(|status| head.starts_with(status));
    if !is_error_status || head.len() > MAX_HEAD || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    // Exactly one head: nothing after its end, and no body.
    let complete = text.find("\r\n\r\n")? + 4 == text.len();
    if !complete
        || !text.contains("\r\ncontent-length: 0\r\n")
        || text.contains("x-content-type-options")
    {
        return None;
    }
    let line_end = text.find("\r\n")? + 2;
    let mut out = Vec::with_capacity(head.len() + ADDED.len());
    out.extend_from_slice(&head[..line_end]);
    out.extend_from_slice(ADDED);
    out.extend_from_slice(&head[line_end..]);
    Some(out)
}

impl<S: AsyncWrite + Unpin> ParseErrorHeaders<S> {
    /// Writes the pending rewritten head; `Ready(len of the original)` once
    /// all of it is out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, done, original)) = &mut self.pending {
            if *done == bytes.len() {
                let original = *original;
                self.pending = None;
                return Poll::Ready(Ok(original));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrorHeaders<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrorHeaders<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none()
            && let Some(bytes) = rewritten(buf)
        {
            self.pending = Some((bytes, 0, buf.len()));
        }
        if self.pending.is_some() {
            return self.drain(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if self.pending.is_none()
            && let (Some(only), None) = (non_empty.next(), non_empty.next())
            && let Some(bytes) = rewritten(only)
        {
            self.pending = Some((bytes, 0, only.len()));
        }
        if self.pending.is_some() {
            return self.drain(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_empty_parse_error_head_is_rewritten() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewritten(head).unwrap()).unwrap();
        assert!(out.starts_with(
            "HTTP/1.1 431 Request Header Fields Too Large\r\nreferrer-policy: no-referrer\r\n"
        ));
        assert!(out.ends_with("content-length: 0\r\ndate: x\r\n\r\n"));
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1",
            b"HTTP/1.1 400 Bad Request\r\nx-content-type-options: nosniff\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(rewritten(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}

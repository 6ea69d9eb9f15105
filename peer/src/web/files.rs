//! `GET /files/{id}` and `GET /files/sha256/{hex}` (the public file whose
//! content has that SHA-256: the hash the ledger records for a report, a
//! certificate or an attachment): MDSS files uploaded as public, to anyone, with
//! single `Range: bytes=…` requests (206, `Content-Range`; 416 for a range
//! that cannot be satisfied), `ETag` = the id (content-addressed, so it
//! never changes; an `If-None-Match` naming it answers 304 without reading
//! the file). Every byte was checked against its chunk hash by the store
//! before it is sent; a damaged chunk fails the request (500, naming
//! the chunk) and nothing of it is sent. A file that is not public,
//! confidential or absent is a 404 alike: existence is not revealed.
//!
//! A body of at most [`MAX_BODY`] bytes is read whole before the status
//! is sent, so damage anywhere in it is a 500. A larger one is streamed in
//! [`PIECE`]-byte pieces (one in memory at a time per response): its first
//! piece is read before the status (damage there is a 500), and damage
//! found later closes the connection short of `Content-Length`, which a
//! client sees as an incomplete download; nothing of a damaged chunk is
//! ever sent either way, and the keeper is woken to repair the copy.

use std::io::Read;

use qcss_mdss::FileId;

use crate::web::Web;
use crate::web::http::{Request, Response};

/// Largest body read whole before the status is sent.
pub(crate) const MAX_BODY: u64 = 16 << 20;
/// Bytes per piece of a streamed body.
const PIECE: usize = 256 << 10;

fn not_found() -> Response {
    Response::text(404, "not found")
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range over `size` bytes,
/// as (start, length). `Err` when it cannot be satisfied or is malformed
/// (several ranges included: not supported).
fn parse_range(header: &str, size: u64) -> Result<(u64, u64), ()> {
    let spec = header.trim().strip_prefix("bytes=").ok_or(())?.trim();
    if spec.contains(',') {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| -> Result<u64, ()> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        s.parse().map_err(|_| ())
    };
    if a.is_empty() {
        let n = num(b)?;
        if n == 0 || size == 0 {
            return Err(());
        }
        let n = n.min(size);
        return Ok((size - n, n));
    }
    let start = num(a)?;
    if start >= size {
        return Err(());
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        num(b)?.min(size - 1)
    };
    if end < start {
        return Err(());
    }
    Ok((start, end - start + 1))
}

/// Whether an `If-None-Match` header names `etag` (or is `*`); weak
/// validators (`W/"…"`) compare alike, as RFC 9110 says for this header.
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .take(64)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

pub(crate) async fn route(web: &Web, req: &Request, id: &str) -> Response {
    let Some(files) = web.files.clone() else {
        return not_found();
    };
    let id = match id.strip_prefix("sha256/") {
        Some(sha) => {
            let (f, sha) = (files.clone(), sha.to_owned());
            match tokio::task::spawn_blocking(move || f.public_by_sha256(&sha)).await {
                Ok(Some(id)) => id,
                _ => return not_found(),
            }
        }
        None => match id.parse::<FileId>() {
            Ok(id) => id,
            Err(_) => return not_found(),
        },
    };
    if !files.is_public(&id) {
        return not_found();
    }
    let store = files.store.clone();
    let stat = match tokio::task::spawn_blocking(move || store.stat(&id)).await {
        Ok(Ok(s)) => s,
        _ => return not_found(),
    };
    if stat.readers.is_some() {
        return not_found();
    }
    let etag = format!("\"{id}\"");
    if req
        .header("if-none-match")
        .is_some_and(|h| matches_etag(h, &etag))
    {
        // The content never changes under an id: the client's copy is it.
        let mut r = Response::text(304, "")
            .with_header("ETag", etag)
            .with_header("Cache-Control", "public, max-age=31536000, immutable");
        r.body.clear(); // a 304 has no content
        return r;
    }
    let size = stat.size;
    let (status, start, len) = match req.header("range") {
        None => (200, 0, size),
        Some(h) => match parse_range(h, size) {
            Ok((start, len)) => (206, start, len),
            Err(()) => {
                return Response::text(416, "range not satisfiable")
                    .with_header("Content-Range", format!("bytes */{size}"));
            }
        },
    };
    let head_only = req.method == "HEAD";
    // Read whole, or the first piece of a stream, before the status.
    let first = len.min(if len <= MAX_BODY {
        MAX_BODY
    } else {
        PIECE as u64
    });
    let (out, rest) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let body = if head_only || len == 0 {
        Vec::new()
    } else {
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let (store, f) = (files.store.clone(), files.clone());
        tokio::task::spawn_blocking(move || {
            let mut first_tx = Some(first_tx);
            let read = (|| -> Result<(), (bool, String)> {
                let mut r = store
                    .get_range(&id, start, len)
                    .map_err(|e| (crate::node::files::is_damage(&e), e.to_string()))?;
                let (mut left, mut piece) = (len, first);
                while left > 0 {
                    let mut buf = vec![0u8; piece.min(left) as usize];
                    r.read_exact(&mut buf).map_err(|e| {
                        let damage = e
                            .get_ref()
                            .and_then(|i| i.downcast_ref::<qcss_mdss::Error>())
                            .is_some_and(crate::node::files::is_damage);
                        (damage, e.to_string())
                    })?;
                    left -= buf.len() as u64;
                    let sent = match first_tx.take() {
                        Some(t) => t.send(Ok(buf)).is_ok(),
                        None => out.blocking_send(buf).is_ok(),
                    };
                    if !sent {
                        return Ok(()); // the client went away
                    }
                    piece = PIECE as u64;
                }
                Ok(())
            })();
            if let Err((damage, e)) = read {
                match first_tx.take() {
                    // Before the status: the route answers 500.
                    Some(t) => drop(t.send(Err((damage, e)))),
                    // Mid-stream: the writer closes short of the length.
                    None => read_failed(&f, id, damage, &e),
                }
            }
        });
        match first_rx.await {
            Ok(Ok(b)) => b,
            Ok(Err((damage, e))) => {
                read_failed(&files, id, damage, &e);
                return Response::text(500, &format!("this copy is damaged: {e}"));
            }
            Err(_) => return Response::text(500, "read task ended"),
        }
    };
    let mut r = Response::text(status, "")
        .with_header("ETag", etag)
        .with_header("Accept-Ranges", "bytes")
        .with_header("Cache-Control", "public, max-age=31536000, immutable");
    if status == 206 {
        r = r.with_header(
            "Content-Range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    r.content_type = stat.media_type.as_str().to_owned().into();
    // The rest, if any, streams from the reader above (HEAD: only the
    // length is sent).
    if (body.len() as u64) < len {
        r.stream = Some(crate::web::http::BodyStream { len, rest });
    }
    r.body = body;
    r
}

/// A read of public file `id` failed: logged, and a damaged copy handed
/// to the keeper to repair at once.
fn read_failed(files: &crate::node::PeerFiles, id: FileId, damage: bool, e: &str) {
    tracing::warn!(file = %id, error = %e, "a public file read failed");
    if damage {
        files.suspect(id);
    }
}

#[cfg(test)]
mod tests {
    use super::{matches_etag, parse_range};

    #[test]
    fn if_none_match() {
        let e = "\"ab12\"";
        assert!(matches_etag("\"ab12\"", e));
        assert!(matches_etag("W/\"ab12\"", e));
        assert!(matches_etag("\"x\", \"ab12\"", e));
        assert!(matches_etag("*", e));
        assert!(!matches_etag("\"ab1\"", e));
        assert!(!matches_etag("ab12", e));
        assert!(!matches_etag("", e));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Ok((90, 10)));
        assert_eq!(parse_range("bytes=-5", 100), Ok((95, 5)));
        assert_eq!(parse_range("bytes=-500", 100), Ok((0, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Ok((50, 50)));
        for bad in [
            "bytes=100-",
            "bytes=9-3",
            "bytes=-0",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(bad, 100), Err(()), "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Err(()));
    }
}

//! Just enough HTTP/1.1 for the web pages, in the manner of
//! `qcss_network::ops`: one `GET` per connection, a request head of at most
//! 8 KiB read within 5 s, no request bodies, `Connection: close` after every
//! response. A response body is in memory, or streamed ([`BodyStream`]: a
//! large MDSS file) with a timeout per piece instead of one for the whole
//! response. The stream may be plain TCP or TLS.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// How long a client gets to send its request head.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client gets to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After responding, how long unread input is drained (at most
/// 64 KiB, `qcss_network::ops::drain`).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// A parsed request: method, decoded path, query parameters, the headers
/// the pages use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, percent-decoded.
    pub(crate) path: String,
    /// The raw query string (after `?`), not decoded.
    pub(crate) raw_query: String,
    /// Query parameters, decoded (`+` is a space); the first of repeats.
    pub(crate) query: BTreeMap<String, String>,
    /// Header names lowercased; the first of repeats.
    pub(crate) headers: BTreeMap<String, String>,
}

impl Request {
    /// A query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A header (name in lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A response about to be written.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: std::borrow::Cow<'static, str>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    /// A body too large to hold, sent piece by piece after `body` (which
    /// then holds its first piece).
    pub(crate) stream: Option<BodyStream>,
}

/// The rest of a streamed body: `len` bytes in all (with the response's
/// `body`), as pieces from a producer. A producer that fails stops sending;
/// the writer then closes the connection short of `Content-Length`, which
/// is how HTTP/1.1 tells a client the body is incomplete (the status line
/// is already gone).
#[derive(Debug)]
pub(crate) struct BodyStream {
    pub(crate) len: u64,
    pub(crate) rest: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

/// The security headers of every page: no framing, no sniffing, scripts
/// only from this server.
const PAGE_HEADERS: &str = "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
Referrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; \
style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self' data:; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'\r\n";

impl Response {
    pub(crate) fn html(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: "text/html; charset=utf-8".into(),
            headers: vec![("Cache-Control", "no-store".into())],
            body: body.into_bytes(),
            stream: None,
        }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json".into(),
            headers: vec![("Cache-Control", "no-store".into())],
            body: value.to_string().into_bytes(),
            stream: None,
        }
    }

    /// `{"error": message}` with `status`.
    pub(crate) fn json_error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    pub(crate) fn text(status: u16, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            headers: Vec::new(),
            body: format!("{body}\n").into_bytes(),
            stream: None,
        }
    }

    pub(crate) fn redirect(location: &str) -> Self {
        let mut r = Self::text(303, &format!("see {location}"));
        r.headers.push(("Location", location.to_owned()));
        r
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        // A 304 describes the representation the client already holds: it
        // carries no content, and RFC 9110 forbids a Content-Length that
        // differs from the 200's, so it sends neither type nor length.
        if self.status != 304 {
            head.push_str(&format!(
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type.as_ref(),
                self.stream
                    .as_ref()
                    .map_or(self.body.len() as u64, |s| s.len),
            ));
        }
        head.push_str(&format!("Connection: close\r\n{PAGE_HEADERS}"));
        for (name, value) in &self.headers {
            // Values are ours; still, never let one split the head.
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

pub(crate) use qcss_network::ops::{HeadError, read_head};
use qcss_network::ops::{HeadParts, reason_phrase, split_head};

/// Parses `METHOD SP /target SP HTTP/1.x` and the header lines. `None` for
/// anything malformed.
pub(crate) fn parse_head(head: &[u8]) -> Option<Request> {
    let HeadParts {
        method,
        target,
        headers: lines,
    } = split_head(head)?;
    let mut headers = BTreeMap::new();
    for (name, value) in lines {
        headers
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| value.trim().to_owned());
    }
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(path, false)?;
    let mut query = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (percent_decode(k, true), percent_decode(v, true)) {
            query.entry(k).or_insert(v);
        }
    }
    Some(Request {
        method: method.to_owned(),
        path,
        raw_query: raw_query.to_owned(),
        query,
        headers,
    })
}

/// `%XX` (and, in a query, `+`) decoded; `None` if not valid UTF-8 or a
/// bad escape (the crate passes those through; a link with one is not
/// ours, so it is refused).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let escapes_ok = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return None;
    }
    let spaced;
    let s = if plus_is_space && s.contains('+') {
        spaced = s.replace('+', " ");
        spaced.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters (for query values
/// in links, and path segments).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Writes `response` and closes the sending side; false if the client
/// did not take it in time, or a streamed body ended short.
pub(crate) async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &mut Response,
    head_only: bool,
) -> bool {
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response.to_bytes(head_only)).await?;
        stream.flush().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return false;
    }
    if let (Some(body), false) = (&mut response.stream, head_only) {
        // Each piece must be taken within the timeout; a whole large file
        // may take as long as the client needs.
        let mut sent = response.body.len() as u64;
        while let Some(piece) = body.rest.recv().await {
            sent += piece.len() as u64;
            let w = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&piece)).await;
            if !matches!(w, Ok(Ok(()))) {
                return false;
            }
        }
        if sent != body.len {
            return false; // the producer failed: close short of the length
        }
    }
    let done = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.flush().await?;
        stream.shutdown().await
    })
    .await;
    matches!(done, Ok(Ok(())))
}

/// Reads and discards what the client still sends, so that closing does
/// not reset the connection before it has read the response.
pub(crate) async fn drain<S: AsyncRead + Unpin>(stream: &mut S) {
    qcss_network::ops::drain(stream, DRAIN_TIMEOUT).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_queries_and_headers() {
        let r = parse_head(
            b"GET /01/0690/10/LJ%2DA/21/5?8030=ab-_c&lang=zh&q=a+b HTTP/1.1\r\nHost: x\r\nAccept-Language: zh-CN,zh;q=0.9",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/01/0690/10/LJ-A/21/5");
        assert_eq!(r.raw_query, "8030=ab-_c&lang=zh&q=a+b");
        assert_eq!(r.param("8030"), Some("ab-_c"));
        assert_eq!(r.param("lang"), Some("zh"));
        assert_eq!(r.param("q"), Some("a b"));
        assert_eq!(r.header("accept-language"), Some("zh-CN,zh;q=0.9"));
        for bad in [
            &b"GET / HTTP/2"[..],
            b"get / HTTP/1.1",
            b"GET x HTTP/1.1",
            b"GET /%zz HTTP/1.1",
            b"GET / HTTP/1.1\r\nnocolon",
        ] {
            assert_eq!(parse_head(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let s = "https://q.example.com/01/1/10/A/21/5?8030=x y";
        assert_eq!(percent_decode(&percent_encode(s), true).unwrap(), s);
        assert_eq!(percent_decode("%E5%93%81", false).unwrap(), "品");
    }

    /// A streamed body goes out whole behind a head that declares its
    /// full length; a producer that stops early leaves the response short
    /// of it (and `write_response` says so), never padded.
    #[tokio::test]
    async fn streamed_bodies() {
        for (pieces, complete) in [(3usize, true), (1, false)] {
            let (tx, rest) = tokio::sync::mpsc::channel(4);
            let mut r = Response::text(200, "");
            r.body = vec![b'a'; 10];
            r.stream = Some(BodyStream { len: 40, rest });
            tokio::spawn(async move {
                for i in 0..pieces {
                    tx.send(vec![b'b' + i as u8; 10]).await.unwrap();
                }
            });
            let (mut client, mut server) = tokio::io::duplex(1 << 16);
            let ok = write_response(&mut server, &mut r, false).await;
            drop(server);
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut got)
                .await
                .unwrap();
            let text = String::from_utf8(got).unwrap();
            assert_eq!(ok, complete, "{text}");
            assert!(text.contains("Content-Length: 40\r\n"), "{text}");
            let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
            let want = if complete {
                "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
            } else {
                "aaaaaaaaaabbbbbbbbbb"
            };
            assert_eq!(body, want);
        }
    }

    #[test]
    fn header_values_cannot_split_the_head() {
        let r = Response::text(303, "x").with_header("Location", "/a\r\nSet-Cookie: x");
        let text = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(text.contains("Location: /aSet-Cookie: x\r\n"), "{text}");
    }
}

//! What every QCSS gRPC server puts in front of its services.
//!
//! [`trim_status_message`] bounds the `grpc-message` a unary error carries:
//! errors often quote what the client sent (a policy, a key, a name), and a
//! status message over the client's header-list limit (16 KiB in grpc-go and
//! grpc-js) makes standard clients fail with "metadata size exceeds hard
//! limit", hiding the reason (issue 15). Messages longer than
//! [`MAX_STATUS_MESSAGE`] keep their start and say how much was cut.

use http::HeaderValue;

/// Longest `grpc-message` (percent-encoded bytes) a server sends.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// Cuts `s` to at most `max` bytes on a character boundary, saying how many
/// bytes were left out. For error text that quotes client input.
pub fn echo(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end).into()
}

/// Trims the `grpc-message` header of `resp` (a trailers-only error
/// response) to [`MAX_STATUS_MESSAGE`]; for `tower::util::MapResponseLayer`.
pub fn trim_status_message<B>(mut resp: http::Response<B>) -> http::Response<B> {
    if let Some(v) = resp.headers().get("grpc-message")
        && v.len() > MAX_STATUS_MESSAGE
    {
        let bytes = v.as_bytes();
        let mut end = MAX_STATUS_MESSAGE;
        // Never cut inside a percent-encoded triple.
        if let Some(p) = bytes[end.saturating_sub(2)..end]
            .iter()
            .position(|b| *b == b'%')
        {
            end = end - 2 + p;
        }
        let mut out = bytes[..end].to_vec();
        out.extend_from_slice(format!("%E2%80%A6 ({} more bytes)", bytes.len() - end).as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&out) {
            resp.headers_mut().insert("grpc-message", v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_status_messages_are_cut_outside_percent_triples() {
        let long = "%41".repeat(1000);
        let resp = http::Response::builder()
            .header("grpc-message", long.as_str())
            .body(())
            .unwrap();
        let out = trim_status_message(resp);
        let v = out.headers()["grpc-message"].to_str().unwrap();
        assert!(v.len() < MAX_STATUS_MESSAGE + 40, "{}", v.len());
        let kept = v.split("%E2%80%A6").next().unwrap();
        assert_eq!(kept.len() % 3, 0, "cut inside a %XX triple: {kept}");
        assert!(v.ends_with("more bytes)"));
    }

    #[test]
    fn short_messages_and_echoes_are_unchanged() {
        let resp = http::Response::builder()
            .header("grpc-message", "fine")
            .body(())
            .unwrap();
        assert_eq!(trim_status_message(resp).headers()["grpc-message"], "fine");
        assert_eq!(echo("abc", 3), "abc");
        assert_eq!(echo("héllo", 2), "h… (5 more bytes)");
    }
}

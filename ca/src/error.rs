//! The one error type of the CA, naming who is at fault.

/// Why the CA refused a request or could not run. Every variant names the
/// thing that was wrong; none of them changes the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// No identity is registered under this name.
    #[error("unknown name {0:?}")]
    UnknownName(String),
    /// The enrollment secret does not match.
    #[error("wrong enrollment secret for {0:?}")]
    WrongSecret(String),
    /// Too many wrong secrets for this name recently.
    #[error("too many failed enrollment attempts for {name:?}; retry in {retry_after_secs} s")]
    RateLimited {
        /// The name under attack.
        name: String,
        /// Seconds until the name may try again.
        retry_after_secs: u64,
    },
    /// The name has used all its enrollments.
    #[error("{name:?} has used all {max} of its enrollments")]
    EnrollmentsExhausted {
        /// The name.
        name: String,
        /// Its limit.
        max: i32,
    },
    /// The name is already registered.
    #[error("{0:?} is already registered")]
    AlreadyRegistered(String),
    /// The caller may not register or revoke identities at all.
    #[error("{caller:?} (role {role}) is not a registrar")]
    NotARegistrar {
        /// The caller's name.
        caller: String,
        /// The caller's role.
        role: String,
    },
    /// The registrar may not register or revoke this role.
    #[error("registrar {registrar:?} may not act on role {role} (allowed: {allowed})")]
    RoleNotAllowed {
        /// The registrar's name.
        registrar: String,
        /// The role asked for.
        role: String,
        /// What the registrar may register.
        allowed: String,
    },
    /// The CSR cannot be parsed, its signature is wrong or its key is neither P-256 nor Ed25519.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// The CSR asks for something the registration does not grant.
    #[error("CSR for {name:?} asks for {asked}, but the registration has {registered}")]
    CsrNotAllowed {
        /// The name enrolling.
        name: String,
        /// What the CSR asked for.
        asked: String,
        /// What the registration holds.
        registered: String,
    },
    /// A field of the request is invalid.
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The request is larger than the CA accepts.
    #[error("request of {size} bytes exceeds the limit of {max} bytes")]
    Oversize {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The caller's certificate is not valid for this CA (unknown issuer, expired, revoked).
    #[error("caller certificate refused: {0}")]
    BadCaller(String),
    /// The signature on a signed request does not verify.
    #[error("request signature does not verify")]
    BadSignature,
    /// The request's timestamp is outside the accepted window.
    #[error("request timestamp {timestamp} is more than {window_secs} s from the CA's clock")]
    StaleRequest {
        /// The request's timestamp.
        timestamp: i64,
        /// The window.
        window_secs: i64,
    },
    /// The request's nonce was already used.
    #[error("request replayed (nonce already seen)")]
    Replay,
    /// The identity or certificate was revoked.
    #[error("{0} is revoked")]
    Revoked(String),
    /// No certificate with this serial was issued here.
    #[error("no certificate with serial {0} was issued by this CA")]
    UnknownSerial(String),
    /// The CA's own files or configuration are unusable.
    #[error("CA setup: {0}")]
    Setup(String),
    /// The store failed.
    #[error("CA store: {0}")]
    Store(String),
}

impl From<sled::Error> for CaError {
    fn from(e: sled::Error) -> Self {
        CaError::Store(e.to_string())
    }
}

impl From<CaError> for tonic::Status {
    fn from(e: CaError) -> Self {
        use tonic::Code;
        let code = match &e {
            CaError::UnknownName(_) | CaError::UnknownSerial(_) => Code::NotFound,
            CaError::WrongSecret(_)
            | CaError::BadSignature
            | CaError::BadCaller(_)
            | CaError::StaleRequest { .. }
            | CaError::Replay => Code::Unauthenticated,
            CaError::RateLimited { .. } | CaError::EnrollmentsExhausted { .. } => {
                Code::ResourceExhausted
            }
            CaError::AlreadyRegistered(_) => Code::AlreadyExists,
            CaError::NotARegistrar { .. }
            | CaError::RoleNotAllowed { .. }
            | CaError::CsrNotAllowed { .. }
            | CaError::Revoked(_) => Code::PermissionDenied,
            CaError::BadCsr(_) | CaError::InvalidArgument { .. } => Code::InvalidArgument,
            CaError::Oversize { .. } => Code::OutOfRange,
            CaError::Setup(_) | CaError::Store(_) => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}

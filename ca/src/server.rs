//! The CA's gRPC service: maps `qcss.ca.CertificateAuthority` onto
//! [`Authority`]. TLS is server-authenticated with optional client
//! certificates (a newcomer has none); identity comes from signed requests.

use std::future::Future;
use std::sync::Arc;

use qcss_network::ops::{CounterVec, Registry};
use qcss_network::tls::{ClientAuth, ServerTlsSettings, TlsAcceptorHandle, incoming};
use qcss_proto::qcss::ca as pb;
use qcss_proto::qcss::ca::certificate_authority_server::{
    CertificateAuthority, CertificateAuthorityServer,
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::authority::{Authority, HomeLayout};
use crate::error::CaError;

/// The gRPC service.
#[derive(Clone)]
pub struct CaService {
    auth: Arc<Authority>,
    /// Requests answered, by method and outcome (`ok`, `refused`).
    requests: CounterVec,
}

impl std::fmt::Debug for CaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaService").finish_non_exhaustive()
    }
}

impl CaService {
    /// Wraps an authority; its request counts go to `registry`.
    pub fn new(auth: Arc<Authority>, registry: &Registry) -> Self {
        let requests = registry
            .counter_vec(
                "qcss_ca_requests_total",
                "CA requests answered, by method (register, enroll, reenroll, revoke, crl) and outcome (ok, refused)",
                &["method", "outcome"],
            )
            .expect("metric names are static and valid");
        CaService { auth, requests }
    }

    /// Runs blocking CA work (PBKDF2, signing, sled) off the async threads.
    async fn run<T: Send + 'static>(
        &self,
        method: &str,
        f: impl FnOnce(&Authority) -> Result<T, CaError> + Send + 'static,
    ) -> Result<T, Status> {
        let auth = self.auth.clone();
        let r = tokio::task::spawn_blocking(move || f(&auth))
            .await
            .map_err(|e| Status::internal(format!("CA task failed: {e}")))?
            .map_err(|e| {
                tracing::info!(error = %e, "request refused");
                Status::from(e)
            });
        let outcome = if r.is_ok() { "ok" } else { "refused" };
        self.requests.with(&[method, outcome]).inc();
        r
    }
}

#[tonic::async_trait]
impl CertificateAuthority for CaService {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(self.auth.info()))
    }

    async fn register(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let signed = req.into_inner();
        let secret = self.run("register", move |a| a.register(&signed)).await?;
        Ok(Response::new(pb::RegisterResponse { secret }))
    }

    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let r = req.into_inner();
        let issued = self.run("enroll", move |a| a.enroll(&r)).await?;
        Ok(Response::new(pb::EnrollResponse {
            cert_pem: issued.cert_pem,
            ca_cert_pem: issued.ca_cert_pem,
            serial: issued.serial,
        }))
    }

    async fn reenroll(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let signed = req.into_inner();
        let issued = self.run("reenroll", move |a| a.reenroll(&signed)).await?;
        Ok(Response::new(pb::EnrollResponse {
            cert_pem: issued.cert_pem,
            ca_cert_pem: issued.ca_cert_pem,
            serial: issued.serial,
        }))
    }

    async fn revoke(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let signed = req.into_inner();
        let resp = self.run("revoke", move |a| a.revoke(&signed)).await?;
        Ok(Response::new(resp))
    }

    async fn get_crl(
        &self,
        _: Request<pb::GetCrlRequest>,
    ) -> Result<Response<pb::CrlResponse>, Status> {
        let (crl_pem, tls_crl_pem, crl_number) = self.run("crl", |a| a.crls()).await?;
        Ok(Response::new(pb::CrlResponse {
            crl_pem,
            tls_crl_pem,
            crl_number,
        }))
    }
}

/// How often the server checks whether its TLS certificate needs renewing.
const SERVER_TLS_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The TLS settings of the CA server, from its home.
pub fn tls_settings(auth: &Authority) -> Result<ServerTlsSettings, CaError> {
    let l = HomeLayout::new(&auth.config().home);
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| CaError::Setup(format!("{}: {e}", p.display())))
    };
    Ok(ServerTlsSettings {
        cert_pem: read(&l.server_tls_cert)?,
        key_pem: read(&l.server_tls_key)?,
        client_roots_pem: vec![read(&l.tls_ca_cert)?],
        crls_pem: vec![],
        client_auth: ClientAuth::Optional,
    })
}

/// Serves the CA on `listener` until `shutdown` resolves, counting requests
/// in `registry` (served on the operations port when configured).
pub async fn serve(
    auth: Arc<Authority>,
    listener: TcpListener,
    registry: &Registry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CaError> {
    let tls = TlsAcceptorHandle::new(&tls_settings(&auth)?)
        .map_err(|e| CaError::Setup(format!("TLS: {e}")))?;
    // The server's own TLS certificate is renewed in place before it
    // expires, as at start, and served on new connections: a CA left running
    // for its certificate's lifetime never lets it lapse.
    {
        let (auth, tls) = (auth.clone(), tls.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SERVER_TLS_CHECK).await;
                let renewed = auth.renew_server_tls().and_then(|renewed| {
                    if renewed {
                        tls.reload(&tls_settings(&auth)?)
                            .map_err(|e| CaError::Setup(format!("TLS: {e}")))?;
                    }
                    Ok(renewed)
                });
                match renewed {
                    Ok(true) => tracing::info!("server TLS certificate renewed and in use"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot renew the server TLS certificate")
                    }
                }
            }
        });
    }
    let max = auth.config().max_request_bytes;
    let svc = CertificateAuthorityServer::new(CaService::new(auth, registry))
        .max_decoding_message_size(max)
        .max_encoding_message_size(4 * max);
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            qcss_network::grpc::trim_status_message::<tonic::body::Body>,
        ))
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming(listener, tls), shutdown)
        .await
        .map_err(|e| CaError::Setup(format!("gRPC server: {e}")))
}

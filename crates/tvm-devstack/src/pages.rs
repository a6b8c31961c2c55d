//! A static web server for a browser test's page: a fixed set of files read
//! at start, served on 127.0.0.1 (the page's origin, which the function's
//! `TVM_CORS_ORIGINS` lists). Nothing outside that set is served.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

pub struct Pages {
    origin: String,
    accept: tokio::task::JoinHandle<()>,
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

impl Pages {
    /// Serve `files` (relative to `root`) at `/<file>`, and the first one at `/` too.
    pub async fn start(root: &Path, files: &[&str]) -> Result<Self, String> {
        let mut served = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            let bytes = std::fs::read(root.join(file))
                .map_err(|e| format!("{}: {e}", root.join(file).display()))?;
            let entry = (content_type(file), Bytes::from(bytes));
            if i == 0 {
                served.insert("/".to_string(), entry.clone());
            }
            served.insert(format!("/{file}"), entry);
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let accept = crate::serve::http1(listener, Arc::new(served), serve);
        Ok(Self {
            origin: format!("http://{addr}"),
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`: the page's origin, as a browser sends it.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(
    files: Arc<HashMap<String, (&'static str, Bytes)>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = match files.get(req.uri().path()) {
        Some((kind, bytes)) => {
            let mut r = Response::new(Full::new(bytes.clone()));
            r.headers_mut()
                .insert("content-type", kind.parse().expect("a header"));
            r
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    r.headers_mut()
        .insert("cache-control", "no-store".parse().expect("a header"));
    Ok(r)
}

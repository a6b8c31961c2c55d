//! The caller API Gateway (REST v1, HTTP API v2) or a function URL put in
//! the request context after checking the SigV4 signature, or the claims
//! an HTTP API JWT authorizer put there after verifying a token (an oidc
//! caller, held to `TVM_JWT_ISSUERS` and `TVM_JWT_AUDIENCES` here too).

use chrono::{DateTime, Utc};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use tvm_core::principal::Principal;

use super::{IdentityError, IdentityFailure, IdentitySource};
use crate::aws::BoxFut;

/// The `apigw` identity mode.
#[derive(Debug, Clone, Default)]
pub struct ApigwSource {
    /// `TVM_JWT_ISSUERS`: a JWT authorizer's caller of another issuer is refused.
    pub jwt_issuers: Vec<String>,
    /// `TVM_JWT_AUDIENCES`; none: the authorizer's own audience check stands.
    pub jwt_audiences: Vec<String>,
}

impl IdentitySource for ApigwSource {
    fn name(&self) -> &'static str {
        "apigw"
    }

    fn identify<'a>(
        &'a self,
        req: &'a http::Request<Body>,
        now: DateTime<Utc>,
    ) -> BoxFut<'a, Result<Option<Principal>, IdentityFailure>> {
        Box::pin(async move {
            let ctx = req.request_context_ref();
            if let Some(caller) = from_context(ctx)? {
                return Ok(Some(caller));
            }
            Ok(self.from_jwt_authorizer(ctx, now)?)
        })
    }
}

impl ApigwSource {
    /// The oidc caller of an HTTP API JWT authorizer's claims, if any.
    pub fn from_jwt_authorizer(
        &self,
        ctx: Option<&RequestContext>,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>, IdentityError> {
        let Some(RequestContext::ApiGatewayV2(c)) = ctx else {
            return Ok(None);
        };
        let Some(jwt) = c.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) else {
            return Ok(None);
        };
        if jwt.claims.is_empty() {
            return Ok(None);
        }
        let trust = tvm_core::oidc::Trust {
            issuers: &self.jwt_issuers,
            audiences: &self.jwt_audiences,
        };
        let claims = jwt.claims.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        tvm_core::oidc::authorizer_caller(claims, trust, now.timestamp())
            .map(|o| Some(Principal::from(o)))
            .map_err(IdentityError::Token)
    }
}

/// The caller from an API Gateway or function URL IAM context, if any.
pub fn from_context(ctx: Option<&RequestContext>) -> Result<Option<Principal>, IdentityError> {
    let (arn, account, org) = match ctx {
        Some(RequestContext::ApiGatewayV1(c)) => {
            let org = c
                .identity
                .other
                .get("principalOrgId")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            (
                c.identity.user_arn.clone(),
                c.identity.account_id.clone(),
                org,
            )
        }
        Some(RequestContext::ApiGatewayV2(c)) => {
            match c.authorizer.as_ref().and_then(|a| a.iam.as_ref()) {
                Some(iam) => (
                    iam.user_arn.clone(),
                    iam.account_id.clone(),
                    iam.principal_org_id.clone(),
                ),
                None => (None, None, None),
            }
        }
        _ => (None, None, None),
    };
    // An empty userArn arrives as Some(""): no identity.
    let Some(arn) = arn.filter(|a: &String| !a.is_empty()) else {
        return Ok(None);
    };
    let principal = Principal::parse(&arn, org.as_deref())?;
    if account
        .as_deref()
        .is_some_and(|a| !a.is_empty() && a != principal.account)
    {
        return Err(IdentityError::AccountMismatch);
    }
    Ok(Some(principal))
}

//! The caller API Gateway (REST v1, HTTP API v2) or a function URL put in
//! the request context after checking the SigV4 signature.

use chrono::{DateTime, Utc};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use tvm_core::principal::Principal;

use super::{IdentityError, IdentityFailure, IdentitySource};
use crate::aws::BoxFut;

/// The `apigw` identity mode.
pub struct ApigwSource;

impl IdentitySource for ApigwSource {
    fn name(&self) -> &'static str {
        "apigw"
    }

    fn identify<'a>(
        &'a self,
        req: &'a http::Request<Body>,
        _now: DateTime<Utc>,
    ) -> BoxFut<'a, Result<Option<Principal>, IdentityFailure>> {
        Box::pin(async move { Ok(from_context(req.request_context_ref())?) })
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

//! The revocation policy on protected roles. The list of revoked sessions of
//! a role lives in DynamoDB (one item per role, one attribute per session),
//! and the IAM inline policy is rendered from it; a write that raced another
//! re-renders, so no revocation is lost to a concurrent one.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tvm_core::revocation::{render, Revoked, POLICY_NAME};

use super::{AwsError, Dependency};
use super::{BoxFut, RoleRevocations};

pub struct IamRevocations {
    iam: aws_sdk_iam::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl IamRevocations {
    pub fn new(
        iam: aws_sdk_iam::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        table: String,
    ) -> Self {
        Self {
            iam,
            dynamodb,
            table,
        }
    }
}

fn key(role_arn: &str) -> AttributeValue {
    AttributeValue::S(super::keys::role_revocations(role_arn))
}

/// Revoked sessions in an item: attributes named after their SourceIdentity.
fn entries(item: &HashMap<String, AttributeValue>) -> (Vec<Revoked>, i64) {
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let list = item
        .iter()
        .filter(|(k, _)| k.starts_with(tvm_core::render::SOURCE_IDENTITY_PREFIX))
        .filter_map(|(k, v)| {
            Some(Revoked {
                source_identity: k.clone(),
                expires_at: v.as_n().ok()?.parse().ok()?,
            })
        })
        .collect();
    (list, version)
}

impl IamRevocations {
    /// Drop entries whose credentials have expired from the stored list
    /// (they are already out of the policy). Best effort, bounded.
    async fn forget_expired(&self, role_arn: &str, entries: &[Revoked], now: i64) {
        let expired: Vec<&Revoked> = entries
            .iter()
            .filter(|e| e.expires_at <= now)
            .take(50)
            .collect();
        if expired.is_empty() {
            return;
        }
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("session_id", key(role_arn));
        let mut names = Vec::new();
        for (i, e) in expired.iter().enumerate() {
            names.push(format!("#x{i}"));
            update = update.expression_attribute_names(format!("#x{i}"), &e.source_identity);
        }
        if let Err(e) = update
            .update_expression(format!("REMOVE {}", names.join(", ")))
            .send()
            .await
        {
            tracing::warn!(error = %super::error_chain(&e), "could not prune expired revocations");
        }
    }
}

impl RoleRevocations for IamRevocations {
    fn deny<'a>(
        &'a self,
        role_arn: &'a str,
        sessions: &'a [Revoked],
        now: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let ddb = |e: super::BoxError| AwsError::unavailable(Dependency::DynamoDb, e);
            let mut update = self
                .dynamodb
                .update_item()
                .table_name(&self.table)
                .key("session_id", key(role_arn))
                .return_values(ReturnValue::AllNew)
                .expression_attribute_values(":one", AttributeValue::N("1".into()));
            let mut sets = Vec::new();
            for (i, s) in sessions.iter().enumerate() {
                sets.push(format!("#s{i} = :s{i}"));
                update = update
                    .expression_attribute_names(format!("#s{i}"), &s.source_identity)
                    .expression_attribute_values(
                        format!(":s{i}"),
                        AttributeValue::N(s.expires_at.to_string()),
                    );
            }
            let expression = if sets.is_empty() {
                "ADD version :one".to_string()
            } else {
                format!("SET {} ADD version :one", sets.join(", "))
            };
            let written = update
                .update_expression(expression)
                .send()
                .await
                .map_err(|e| ddb(e.into()))?;
            let (mut list, mut version) = entries(written.attributes().unwrap_or(&HashMap::new()));
            let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
            // Render, put, and check nobody wrote in between (bounded).
            for _ in 0..5 {
                self.iam
                    .put_role_policy()
                    .role_name(role_name)
                    .policy_name(POLICY_NAME)
                    .policy_document(render(&list, now))
                    .send()
                    .await
                    .map_err(|e| AwsError::unavailable(Dependency::Iam, e))?;
                let current = self
                    .dynamodb
                    .get_item()
                    .table_name(&self.table)
                    .key("session_id", key(role_arn))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| ddb(e.into()))?;
                let (latest, latest_version) = entries(current.item().unwrap_or(&HashMap::new()));
                if latest_version == version {
                    self.forget_expired(role_arn, &latest, now).await;
                    return Ok(());
                }
                (list, version) = (latest, latest_version);
            }
            Err(AwsError::unavailable(
                Dependency::Iam,
                "the revocation policy kept changing under concurrent revocations",
            ))
        })
    }
}

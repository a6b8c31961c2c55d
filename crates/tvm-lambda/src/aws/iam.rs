//! The revocation policy in every account. What is revoked lives in one
//! DynamoDB item (one attribute per entry, a version counter); every
//! account's customer-managed policy `tvm-revocations` is rendered from it
//! and written through that account's revoker role, which trusts only tvm's
//! execution role and may only write that policy.
//!
//! Adding an entry is conditional on the version it read, so two
//! revocations never lose each other. Writing an account's policy happens
//! under that account's write lease (an item beside the state): one writer
//! at a time, each writing the state it read under the lease, none sending a
//! write once its lease may have passed on. So the last version in every
//! account holds every entry stored before it, and a slow write never lands
//! over a newer one. The lease records the version written; a writer whose
//! entry a newer write already carries writes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use tokio::sync::Mutex;
use tvm_core::revocation::{Adder, Entry, Revocations, Target, Term};

use super::attr::n;
use super::{AwsError, BoxFut, Dependency, RevocationPolicy};
use crate::config::Config;

/// Conditional writes and re-renders a revocation tries, at most.
const ATTEMPTS: usize = 5;
/// How long a revoker session is asked for, and how early it is renewed.
const REVOKER_SECONDS: i32 = 900;
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// IAM keeps at most five versions of a managed policy.
const MAX_VERSIONS: usize = 5;
/// Expired entries removed in one update, at most (the expression stays
/// far below DynamoDB's 4 KB).
const MAX_PRUNED: usize = 100;

pub struct IamRevocations {
    dynamodb: aws_sdk_dynamodb::Client,
    sts: aws_sdk_sts::Client,
    /// What every per-account IAM client is built from (region, endpoint,
    /// timeouts, HTTP client); only the credentials differ.
    sdk: aws_config::SdkConfig,
    table: String,
    config: Config,
    clients: Mutex<HashMap<String, (aws_sdk_iam::Client, Instant)>>,
}

impl IamRevocations {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        sts: aws_sdk_sts::Client,
        sdk: aws_config::SdkConfig,
        config: Config,
    ) -> Self {
        Self {
            dynamodb,
            sts,
            sdk,
            table: config.sessions_table.clone(),
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }
}

fn ddb<E: std::error::Error + Send + Sync + 'static>(e: E) -> AwsError {
    AwsError::unavailable(Dependency::DynamoDb, e)
}

fn key() -> AttributeValue {
    AttributeValue::S(super::keys::REVOCATIONS.into())
}

/// The stored state: the entries and the version they were read at.
fn parse(item: &HashMap<String, AttributeValue>) -> (Revocations, i64) {
    let num = |v: Option<&AttributeValue>| v?.as_n().ok()?.parse::<i64>().ok();
    let version = num(item.get("version")).unwrap_or(0);
    let entries = item.iter().filter_map(|(k, v)| {
        let target = Target::from_key(k)?;
        let m = v.as_m().ok()?;
        Some(Entry {
            target,
            term: Term {
                issued_before: num(m.get("b")),
                prune_at: num(m.get("p"))?,
            },
        })
    });
    (Revocations::new(entries), version)
}

fn stored(term: Term) -> AttributeValue {
    let mut m = HashMap::from([("p".to_string(), n(term.prune_at))]);
    if let Some(b) = term.issued_before {
        m.insert("b".into(), n(b));
    }
    AttributeValue::M(m)
}

impl IamRevocations {
    async fn read(&self) -> Result<(Revocations, i64), AwsError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("session_id", key())
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        Ok(parse(out.item().unwrap_or(&HashMap::new())))
    }

    /// Add `entries` (dropping expired entries) unless the policy would not
    /// fit; the state to render and its version.
    async fn store(
        &self,
        entries: &[Entry],
        by: Adder,
        accounts: &[String],
        now: i64,
    ) -> Result<(Revocations, i64), AwsError> {
        for _ in 0..ATTEMPTS {
            let (mut state, version) = self.read().await?;
            let expired: Vec<Target> = state.expired(now).into_iter().take(MAX_PRUNED).collect();
            let mut next = state.clone();
            let changed: Vec<&Entry> = entries.iter().filter(|e| next.add((*e).clone())).collect();
            next.prune(now);
            if !changed.is_empty() {
                next.admit(by, accounts, now)
                    .map_err(AwsError::PolicyFull)?;
            }
            if changed.is_empty() && expired.is_empty() {
                return Ok((state, version));
            }
            let mut update = self
                .dynamodb
                .update_item()
                .table_name(&self.table)
                .key("session_id", key())
                .expression_attribute_names("#ver", "version")
                .expression_attribute_values(":next", n(version + 1));
            let mut set = vec!["#ver = :next".to_string()];
            for (i, entry) in changed.iter().enumerate() {
                let term = next.get(&entry.target).expect("just added");
                update = update
                    .expression_attribute_names(format!("#e{i}"), entry.target.key())
                    .expression_attribute_values(format!(":e{i}"), stored(term));
                set.push(format!("#e{i} = :e{i}"));
            }
            let mut expression = format!("SET {}", set.join(", "));
            if !expired.is_empty() {
                let names: Vec<String> = (0..expired.len()).map(|i| format!("#x{i}")).collect();
                for (name, target) in names.iter().zip(&expired) {
                    update = update.expression_attribute_names(name, target.key());
                }
                expression.push_str(&format!(" REMOVE {}", names.join(", ")));
            }
            update = if version == 0 {
                update.condition_expression("attribute_not_exists(#ver)")
            } else {
                update
                    .condition_expression("#ver = :cur")
                    .expression_attribute_values(":cur", n(version))
            };
            match update.update_expression(expression).send().await {
                Ok(_) => {
                    state = next;
                    return Ok((state, version + 1));
                }
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => continue,
                Err(e) => return Err(ddb(e)),
            }
        }
        Err(ddb(std::io::Error::other(
            "the revocation state kept changing under concurrent revocations",
        )))
    }

    /// An IAM client signed by the account's revoker role, checked once to
    /// reach the account's revocation policy (cached until shortly before
    /// its session ends).
    async fn iam_for(&self, account: &str) -> Result<aws_sdk_iam::Client, AwsError> {
        // Not held across the calls below: accounts are assumed in parallel.
        if let Some((client, until)) = self.clients.lock().await.get(account) {
            if Instant::now() + RENEW_BEFORE < *until {
                return Ok(client.clone());
            }
        }
        let role = self.config.revoker_arn(account);
        let out = self
            .sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("tvm-revoker")
            .duration_seconds(REVOKER_SECONDS)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("AccessDenied") => AwsError::NotDeployed {
                    account: account.to_string(),
                    missing: format!("revoker role {role} that tvm may assume"),
                },
                _ => AwsError::RevocationFailed {
                    account: account.to_string(),
                    dependency: Dependency::Sts,
                    source: e.into(),
                },
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| AwsError::RevocationFailed {
                account: account.to_string(),
                dependency: Dependency::Sts,
                source: "AssumeRole of the revoker returned no credentials".into(),
            })?;
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "tvm-revoker",
        );
        let conf = aws_sdk_iam::config::Builder::from(&self.sdk)
            .credentials_provider(credentials)
            .build();
        let client = aws_sdk_iam::Client::from_conf(conf);
        client
            .list_policy_versions()
            .policy_arn(self.config.revocation_policy_arn(account))
            .send()
            .await
            .map_err(|e| self.iam_failure(account, e))?;
        let until = Instant::now() + Duration::from_secs(REVOKER_SECONDS as u64);
        self.clients
            .lock()
            .await
            .insert(account.to_string(), (client.clone(), until));
        Ok(client)
    }

    /// An IAM failure: a missing policy, or a revoker that may not write it
    /// (AccessDenied, or any 403), is a deployment to fix; anything else a
    /// failure to retry.
    fn iam_failure<E>(&self, account: &str, e: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let policy = self.config.revocation_policy_arn(account);
        let denied = e.code() == Some("AccessDenied")
            || e.raw_response().is_some_and(|r| r.status().as_u16() == 403);
        match e.code() {
            Some("NoSuchEntity") => AwsError::NotDeployed {
                account: account.to_string(),
                missing: format!("revocation policy {policy}"),
            },
            _ if denied => AwsError::NotDeployed {
                account: account.to_string(),
                missing: format!(
                    "revoker role {} allowed to write the revocation policy {policy}",
                    self.config.revoker_arn(account)
                ),
            },
            _ => AwsError::RevocationFailed {
                account: account.to_string(),
                dependency: Dependency::Iam,
                source: e.into(),
            },
        }
    }

    /// Make `doc` the default version of the account's revocation policy,
    /// deleting the oldest other version when IAM's five are in use.
    async fn write(
        &self,
        account: &str,
        doc: &str,
        lease: &Lease,
        sent: &AtomicBool,
    ) -> Result<(), AwsError> {
        let client = self.iam_for(account).await?;
        let policy = self.config.revocation_policy_arn(account);
        for _ in 0..ATTEMPTS {
            let listed = client
                .list_policy_versions()
                .policy_arn(&policy)
                .send()
                .await
                .map_err(|e| self.iam_failure(account, e))?;
            let mut others: Vec<_> = listed
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .filter_map(|v| Some((v.create_date()?.secs(), v.version_id()?.to_string())))
                .collect();
            if listed.versions().len() >= MAX_VERSIONS {
                others.sort();
                if let Some((_, oldest)) = others.first() {
                    match client
                        .delete_policy_version()
                        .policy_arn(&policy)
                        .version_id(oldest)
                        .send()
                        .await
                    {
                        // Another revocation deleted it first: fine.
                        Err(e) if e.code() != Some("NoSuchEntity") => {
                            return Err(self.iam_failure(account, e))
                        }
                        _ => {}
                    }
                }
            }
            if !self.in_time(lease) {
                return Err(AwsError::RevocationFailed {
                    account: account.to_string(),
                    dependency: Dependency::Iam,
                    source: "IAM was too slow to write within the write lease".into(),
                });
            }
            sent.store(true, Ordering::SeqCst);
            match client
                .create_policy_version()
                .policy_arn(&policy)
                .policy_document(doc)
                .set_as_default(true)
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                // A concurrent revocation took the free version: again.
                Err(e) if e.code() == Some("LimitExceeded") => {
                    sent.store(false, Ordering::SeqCst);
                    continue;
                }
                Err(e) => {
                    // A 4xx answer is a refusal: nothing was applied. Only
                    // a timeout, a lost connection or a 5xx leaves it unknown.
                    let refused = e
                        .raw_response()
                        .is_some_and(|r| (400..500).contains(&r.status().as_u16()));
                    if refused {
                        sent.store(false, Ordering::SeqCst);
                    }
                    return Err(self.iam_failure(account, e));
                }
            }
        }
        Err(AwsError::RevocationFailed {
            account: account.to_string(),
            dependency: Dependency::Iam,
            source: "the policy's versions kept filling under concurrent revocations".into(),
        })
    }

    /// Bring every account's policy up to at least state `version`, all
    /// accounts at once; the first failure, every one logged.
    async fn write_all(&self, accounts: &[String], version: i64, now: i64) -> Result<(), AwsError> {
        let results = futures_util::future::join_all(
            accounts
                .iter()
                .map(|a| self.write_account(a, accounts, version, now)),
        )
        .await;
        let mut first = None;
        for (account, result) in accounts.iter().zip(results) {
            if let Err(e) = result {
                tracing::error!(account = %account, error = %super::error_chain(&e), "the revocation policy was not written");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Under the account's write lease: unless a state at least as new as
    /// `version` was written already, read the latest state and write it.
    /// Writes to one account are one at a time and each writes what it
    /// read under the lease, so the last one holds every entry stored
    /// before it; none is sent once the lease may have passed to another
    /// writer, so a slow write never lands over a newer one.
    async fn write_account(
        &self,
        account: &str,
        accounts: &[String],
        version: i64,
        now: i64,
    ) -> Result<(), AwsError> {
        let lease = self.acquire(account).await?;
        let sent = AtomicBool::new(false);
        let outcome = async {
            if lease.written >= version {
                return Ok(lease.written);
            }
            let (state, latest) = self.read().await?;
            let doc = state.render(accounts, now).map_err(AwsError::PolicyFull)?;
            self.write(account, &doc, &lease, &sent).await?;
            Ok(latest)
        }
        .await;
        match &outcome {
            Ok(written) => self.release(account, &lease, Some(*written)).await,
            // A write whose outcome is unknown may still be applied by IAM:
            // the lease runs out before anyone writes after it.
            Err(_) if sent.load(Ordering::SeqCst) => {}
            Err(_) => self.release(account, &lease, None).await,
        }
        outcome.map(drop)
    }

    fn lease_key(account: &str) -> AttributeValue {
        AttributeValue::S(format!("{}-lease#{account}", super::keys::REVOCATIONS))
    }

    /// The account's write lease: one writer at a time, for at most
    /// `lease_length` (a writer that died frees it by expiring).
    async fn acquire(&self, account: &str) -> Result<Lease, AwsError> {
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let length = self.lease_length();
        let waited_until = Instant::now() + length + Duration::from_secs(1);
        loop {
            let until = epoch_ms() + length.as_millis() as i64;
            let out = self
                .dynamodb
                .update_item()
                .table_name(&self.table)
                .key("session_id", Self::lease_key(account))
                .update_expression("SET holder = :me, #until = :until")
                .condition_expression("attribute_not_exists(holder) OR #until < :now")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":me", AttributeValue::S(holder.clone()))
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":now", n(epoch_ms()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match out {
                Ok(o) => {
                    let written = o
                        .attributes()
                        .and_then(|a| a.get("written"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    return Ok(Lease {
                        holder,
                        until,
                        written,
                    });
                }
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                    if Instant::now() > waited_until {
                        return Err(AwsError::RevocationFailed {
                            account: account.to_string(),
                            dependency: Dependency::DynamoDb,
                            source: "another revocation kept the account's policy busy".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(ddb(e)),
            }
        }
    }

    /// Give the lease back, recording the state version written (best
    /// effort: an unreleased lease expires).
    async fn release(&self, account: &str, lease: &Lease, written: Option<i64>) {
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("session_id", Self::lease_key(account))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", AttributeValue::S(lease.holder.clone()));
        update = match written {
            Some(v) => update
                .update_expression("REMOVE holder SET written = :v")
                .expression_attribute_values(":v", n(v.max(lease.written))),
            None => update.update_expression("REMOVE holder"),
        };
        if let Err(e) = update.send().await {
            tracing::warn!(account = %account, error = %super::error_chain(&e), "the revocation write lease was not released; it expires");
        }
    }

    /// Long enough for a write (three IAM calls), bounded by the operation timeout.
    fn lease_length(&self) -> Duration {
        self.config.aws_timeout * 4 + Duration::from_secs(2)
    }

    /// Whether a call may still be sent under `lease`: it must be answered
    /// (or abandoned, `TVM_AWS_TIMEOUT_MS`) well before the lease ends.
    fn in_time(&self, lease: &Lease) -> bool {
        let margin = (self.config.aws_timeout * 2).as_millis() as i64 + 1000;
        epoch_ms() + margin <= lease.until
    }
}

/// One writer's hold on an account's policy.
struct Lease {
    holder: String,
    /// Epoch milliseconds.
    until: i64,
    /// The state version the last writer wrote.
    written: i64,
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl RevocationPolicy for IamRevocations {
    fn revoke<'a>(
        &'a self,
        entries: &'a [Entry],
        accounts: &'a [String],
        by: Adder,
        now: i64,
    ) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            // Every account's revoker first: an account tvm cannot write is
            // an error before anything is stored.
            let revokers =
                futures_util::future::join_all(accounts.iter().map(|a| self.iam_for(a))).await;
            if let Some(e) = revokers.into_iter().find_map(Result::err) {
                return Err(e);
            }
            let (_, version) = self.store(entries, by, accounts, now).await?;
            self.write_all(accounts, version, now)
                .await
                .map_err(|e| AwsError::Stored(Box::new(e)))
        })
    }
}

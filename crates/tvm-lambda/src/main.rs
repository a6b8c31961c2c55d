//! `bootstrap`: the Lambda entry point. Config, SDK config and every client
//! are built here once; the handler borrows them for each invocation.

// The start-up future (every client, the identity sources, the runtime
// loop) is deeper than rustc's default layout query depth.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tvm_lambda::app::App;
use tvm_lambda::aws::dynamo::DynamoSessions;
use tvm_lambda::aws::gates::DynamoGates;
use tvm_lambda::aws::iam::IamRevocations;
use tvm_lambda::aws::kms::PolicySigning;
use tvm_lambda::aws::sns::SnsNotifier;
use tvm_lambda::aws::ssm::SsmPolicies;
use tvm_lambda::aws::sts::StsIssuer;
use tvm_lambda::aws::Notifier;
use tvm_lambda::config::Config;
use tvm_lambda::identity::apigw::ApigwSource;
use tvm_lambda::identity::jwks::Jwks;
use tvm_lambda::identity::jwt::JwtSource;
use tvm_lambda::identity::presigned::PresignedSource;
use tvm_lambda::identity::replay::StsIdentity;
use tvm_lambda::identity::{Identities, IdentitySource};
use tvm_lambda::policies::PolicyCache;

/// Log filter: `RUST_LOG` as `level` and `target=level` pairs (no regex
/// directives: the regex engine alone was 0.3 MB of the binary). A value
/// that does not parse gives the default, and a warning once logging is up.
fn log_filter() -> (tracing_subscriber::filter::Targets, bool) {
    const DEFAULT: &str = "info,aws_config=warn,aws_smithy_runtime=warn";
    let default = || DEFAULT.parse().expect("the default filter parses");
    match std::env::var("RUST_LOG") {
        Ok(v) => v.parse().map_or_else(|_| (default(), false), |t| (t, true)),
        Err(_) => (default(), true),
    }
}

/// tvm's own log lines: they never carry a secret at any level.
fn own_target(target: &str) -> bool {
    ["tvm_lambda", "tvm_core", "bootstrap"]
        .iter()
        .any(|own| target == *own || target.starts_with(&format!("{own}::")))
}

fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    let (filter, parsed) = log_filter();
    // Whatever RUST_LOG says, other crates log at info at most: below it,
    // lambda_runtime prints the raw event (the caller's Authorization,
    // X-Amz-Security-Token and X-Tvm-Identity), the SDK every request and
    // response (STS's credentials) and aws-sigv4 what it signs.
    let secrets_guard = tracing_subscriber::filter::filter_fn(|m| {
        own_target(m.target()) || *m.level() <= tracing::Level::INFO
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(secrets_guard);
    if text {
        registry.with(layer.with_ansi(false)).init();
    } else {
        registry
            .with(layer.json().flatten_event(true).with_current_span(false))
            .init();
    }
    if !parsed {
        tracing::warn!(
            "RUST_LOG did not parse as LEVEL,target=LEVEL,...; using the default filter"
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = Config::from_lookup(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(error = %e, "invalid configuration; refusing to start");
        e
    })?;
    // Compiled-in roots (and TVM_CA_BUNDLE's): no filesystem scan.
    let roots = tvm_lambda::tls::Roots::load(config.ca_bundle.as_deref(), &config.partition)
        .map_err(|e| {
            tracing::error!(error = %e, "invalid TLS roots; refusing to start");
            e
        })?;
    if roots.extra > 0 {
        tracing::info!(
            certificates = roots.extra,
            "trusting TVM_CA_BUNDLE's certificates besides the compiled-in roots"
        );
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    // Lambda sets the region and the function's credentials in the
    // environment, the first link of the SDK's default chains. Naming them
    // skips building the rest (profile files, web identity with its own STS
    // client, ECS, IMDS): 0.3 ms of every cold start. Without them, the
    // default chains as usual.
    let set = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if set("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    let sdk = loader
        .http_client(tvm_lambda::aws::https_client(&roots)?)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(config.aws_timeout)
                .operation_attempt_timeout(config.aws_timeout / 2)
                .connect_timeout(std::time::Duration::from_millis(500))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let policies = PolicyCache::new(
        Arc::new(SsmPolicies::new(
            aws_sdk_ssm::Client::new(&sdk),
            config.policy_prefix.clone(),
        )),
        config.policy_prefix.clone(),
        config.policy_ttl,
        config.policy_max_stale,
        config
            .policy_signing_key
            .clone()
            .map(|key| Arc::new(PolicySigning::new(aws_sdk_kms::Client::new(&sdk), key))),
    );
    policies.prime();
    // The identity sources, in order: API Gateway's IAM context first.
    let mut sources: Vec<Box<dyn IdentitySource>> = Vec::new();
    if config.identity_modes.apigw {
        sources.push(Box::new(ApigwSource {
            jwt_issuers: config.jwt_issuers.clone(),
            jwt_audiences: config.jwt_audiences.clone(),
        }));
    }
    if config.identity_modes.sts {
        let verifier = StsIdentity::new(&config.sts_endpoint, config.aws_timeout, &roots)?;
        sources.push(Box::new(PresignedSource {
            server_id: config.server_id.clone().unwrap_or_default(),
            sts_authority: verifier.authority(),
            verifier: Arc::new(verifier),
        }));
    }
    if config.identity_modes.jwt {
        let keys = Jwks::new(
            &config.jwt_issuers,
            config.aws_timeout,
            config.jwks_max_age,
            &roots,
        )?;
        keys.prime();
        sources.push(Box::new(JwtSource::new(
            keys,
            config.jwt_issuers.clone(),
            config.jwt_audiences.clone(),
        )));
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let sts = aws_sdk_sts::Client::new(&sdk);
    let notifier = config.notify_topic_arn.clone().map(|topic| {
        Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic)) as Arc<dyn Notifier>
    });
    let gates = Arc::new(DynamoGates::new(
        dynamodb.clone(),
        config.approvals_table.clone(),
        config.break_glass_table.clone(),
    ));
    let app = Arc::new(App {
        notifier,
        pending: Default::default(),
        remembered: Default::default(),
        revocations: Arc::new(IamRevocations::new(
            dynamodb.clone(),
            sts.clone(),
            sdk.clone(),
            config.clone(),
        )),
        gate_states: gates.clone(),
        approvals: gates.clone(),
        break_glass: gates,
        sessions: Arc::new(DynamoSessions::new(
            dynamodb,
            config.sessions_table.clone(),
            config.approvals_table.clone(),
            config.break_glass_table.clone(),
        )),
        issuer: Arc::new(StsIssuer::new(sts)),
        identities: Identities::new(sources),
        policies,
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            Ok::<Value, lambda_runtime::Error>(
                app.invoke(
                    event.payload,
                    &event.context.request_id,
                    Some(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(event.context.deadline),
                    ),
                )
                .await,
            )
        }
    }))
    .await
}

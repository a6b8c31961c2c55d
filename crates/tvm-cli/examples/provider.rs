//! A Rust service running on tvm credentials.
//!
//! The service signs to tvm with its own role (the ECS task or Lambda
//! execution role, from the default chain) and every AWS client it builds
//! uses the profile's scoped credentials, refreshed ahead of expiry.
//!
//! ```sh
//! TVM_ENDPOINT=https://abc123.execute-api.eu-west-1.amazonaws.com \
//!   cargo run --example provider -- orders-tenant acme
//! ```

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::types::AttributeValue;
use tvm_client::provider::TvmCredentialsProvider;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let profile = args.next().unwrap_or_else(|| "orders-tenant".into());
    let tenant = args.next().ok_or("usage: provider PROFILE TENANT")?;

    let provider = TvmCredentialsProvider::builder(profile).build().await?;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(tvm_client::https_client())
        .credentials_provider(provider)
        .load()
        .await;

    let me = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await?;
    println!("running as {}", me.arn().unwrap_or_default());

    let orders = aws_sdk_dynamodb::Client::new(&config);
    orders
        .put_item()
        .table_name("orders")
        .item("tenant", AttributeValue::S(tenant.clone()))
        .item("order_id", AttributeValue::S("from-rust".into()))
        .send()
        .await?;
    println!("stored an order for tenant {tenant}");
    Ok(())
}

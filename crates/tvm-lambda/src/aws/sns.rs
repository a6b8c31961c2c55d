//! Notifications to the optional SNS topic.

use aws_sdk_sns::types::MessageAttributeValue;
use tvm_core::api::Notification;

use super::{AwsError, Dependency};
use super::{BoxFut, Notifier};

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        Self { client, topic_arn }
    }
}

impl Notifier for SnsNotifier {
    fn publish<'a>(&'a self, n: &'a Notification) -> BoxFut<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let message =
                serde_json::to_string(n).map_err(|e| AwsError::unavailable(Dependency::Sns, e))?;
            let kind = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(&n.kind)
                .build()
                .map_err(|e| AwsError::unavailable(Dependency::Sns, e))?;
            self.client
                .publish()
                .topic_arn(&self.topic_arn)
                .subject(format!("tvm {}", n.kind))
                .message(message)
                .message_attributes("type", kind)
                .send()
                .await
                .map_err(|e| AwsError::unavailable(Dependency::Sns, e))?;
            Ok(())
        })
    }
}

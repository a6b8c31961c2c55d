//! `GET /v1/profiles`: what this caller could get, and how.

use tvm_core::api::{ProfileEntry, ProfilesResponse};
use tvm_core::decision::access;

use super::{Call, Facts, Handled, Outcome};
use crate::app::App;

impl App {
    pub(super) async fn profiles(&self, call: &Call<'_>) -> Handled {
        let set = self.policies.get().await?;
        let profiles = set
            .profiles()
            .filter_map(|p| {
                access(&set, p, &call.caller, call.now).map(|a| ProfileEntry {
                    profile: p.name.clone(),
                    role_arn: p.role_arn.to_string(),
                    access: a,
                    default_duration: p.default_duration,
                    max_duration: p.max_duration,
                    description: p.description.clone(),
                })
            })
            .collect();
        let answer = ProfilesResponse {
            caller: call.caller.arn.clone(),
            profiles,
        };
        Ok(Outcome::json(200, &answer, Facts::default()))
    }
}

//! Who may be evaluated at all: `TVM_ALLOWED_ACCOUNTS` and
//! `TVM_ALLOWED_ORG_IDS` bound the callers whose policies are even looked
//! at. An empty list does not constrain.
//!
//! An oidc caller has no account: what admits it is its issuer, one of
//! `TVM_JWT_ISSUERS` (checked with its token, see `oidc::caller`).

use crate::principal::{Principal, PrincipalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("account not in TVM_ALLOWED_ACCOUNTS")]
    Account,
    #[error("organization not in TVM_ALLOWED_ORG_IDS (or unknown to this identity mode)")]
    Organization,
}

pub fn admit(
    accounts: &[String],
    org_ids: &[String],
    caller: &Principal,
) -> Result<(), NotAdmitted> {
    if caller.kind == PrincipalKind::Oidc {
        return Ok(());
    }
    if !accounts.is_empty() && !accounts.contains(&caller.account) {
        return Err(NotAdmitted::Account);
    }
    if !org_ids.is_empty() && !caller.org_id.as_ref().is_some_and(|o| org_ids.contains(o)) {
        return Err(NotAdmitted::Organization);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lists_bound_and_an_unknown_org_is_not_admitted() {
        let c = Principal::parse("arn:aws:iam::111122223333:user/a", Some("o-abcdefghij")).unwrap();
        let none: &[String] = &[];
        assert_eq!(admit(none, none, &c), Ok(()));
        assert_eq!(
            admit(&["999999999999".into()], none, &c),
            Err(NotAdmitted::Account)
        );
        assert_eq!(
            admit(&["111122223333".into()], &["o-abcdefghij".into()], &c),
            Ok(())
        );
        assert_eq!(
            admit(none, &["o-otherorg01".into()], &c),
            Err(NotAdmitted::Organization)
        );
        let no_org = Principal::parse("arn:aws:iam::111122223333:user/a", None).unwrap();
        assert_eq!(
            admit(none, &["o-abcdefghij".into()], &no_org),
            Err(NotAdmitted::Organization)
        );
    }
}

//! The ACL seam. Every API handler asks the server before reading or writing; until the ACL
//! issue lands the only authorizer allows everything (and `X-Consul-Default-ACL-Policy` says
//! `allow`).

/// What is being accessed.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Key(&'a str),
    KeyPrefix(&'a str),
    Session(&'a str),
    Node(&'a str),
    Agent,
    Operator,
    Keyring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

pub trait Authorizer: Send + Sync {
    fn allows(&self, token: Option<&str>, resource: Resource<'_>, access: Access) -> bool;
    /// The policy applied when no rule matches (`X-Consul-Default-ACL-Policy`).
    fn default_policy(&self) -> &'static str;
}

/// ACLs disabled.
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn allows(&self, _token: Option<&str>, _resource: Resource<'_>, _access: Access) -> bool {
        true
    }
    fn default_policy(&self) -> &'static str {
        "allow"
    }
}
